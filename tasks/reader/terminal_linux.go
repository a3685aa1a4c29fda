package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// isTerminal: f is a terminal (it answers a terminal's ioctl; /dev/null, a file or a pipe does not).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
