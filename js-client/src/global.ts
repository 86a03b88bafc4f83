// The entry of the classic script build: defines the global Tether.
import { Tether } from './tether'

;(globalThis as typeof globalThis & { Tether: typeof Tether }).Tether = Tether
