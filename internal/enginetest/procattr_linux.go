package enginetest

import "syscall"

// procAttr makes the kernel kill the engine when the test process dies, so
// a crashed test leaves no engine behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
