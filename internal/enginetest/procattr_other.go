//go:build !linux

package enginetest

import "syscall"

// procAttr returns nil: outside Linux an engine outlives a test process
// that crashes.
func procAttr() *syscall.SysProcAttr { return nil }
