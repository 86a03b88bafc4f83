//go:build !linux

package clustertest

import "syscall"

// procAttr puts a node in a process group of its own, so that a Ctrl-C in
// the terminal reaches only the process that started it, which stops it in
// order. (Only Linux can also kill the node when that process dies.)
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
