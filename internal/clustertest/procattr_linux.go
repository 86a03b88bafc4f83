package clustertest

import "syscall"

// procAttr puts a node in a process group of its own, so that a Ctrl-C in
// the terminal reaches only the process that started it, which stops it in
// order, and makes the kernel kill the node when that process dies, so that
// a killed command or test leaves no node behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
