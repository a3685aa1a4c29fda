//go:build !linux

package tcpin

import "net"

// clampWindow does nothing here: the window clamp is Linux's (the reader's production platform).
func clampWindow(net.Conn) {}

// unreadBytes cannot be known here.
func unreadBytes(net.Conn) (int, bool) { return 0, false }
