//go:build !linux

package nginxtest

import "syscall"

// procAttr is nil where the kernel cannot kill nginx with its parent.
func procAttr() *syscall.SysProcAttr { return nil }
