package nginxtest

import "syscall"

// procAttr makes the kernel kill nginx when the process that started it
// dies, so that a crashed test or command leaves no nginx behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
