//go:build !linux

package main

import "os"

// isTerminal is false off Linux, where the reader does not run in production: output stays as on ECS.
func isTerminal(*os.File) bool { return false }
