// Package flagenv is the one command-line convention every command of the project follows: each component
// registers its own flags, every flag --foo-bar can also be set by an environment variable PREFIX_FOO_BAR
// (a flag given on the command line wins), help goes to stdout with exit status 0, and a command-line
// mistake goes to stderr with exit status 2.
//
// An environment variable that is set but empty counts as unset, so that a deployment template which leaves
// a value blank keeps the flag's default instead of failing on "".
package flagenv

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// ErrUsage marks a command-line mistake: an unknown flag, a value that does not parse, a bad environment
// variable. ExitCode maps it to 2.
var ErrUsage = errors.New("usage error")

// EnvName is the environment variable that sets flag name: prefix, then the name in upper case with dashes
// as underscores (--source-addr with prefix READER_ is READER_SOURCE_ADDR).
func EnvName(prefix, name string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Overlay sets every flag of fs that was not given on the command line from its environment variable
// (EnvName(prefix, flag)), read through getenv, when that variable is not empty. Its error names the
// variable and wraps ErrUsage.
func Overlay(fs *flag.FlagSet, prefix string, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		name := EnvName(prefix, f.Name)
		if v := getenv(name); v != "" {
			if serr := f.Value.Set(v); serr != nil {
				err = fmt.Errorf("%w: %s=%q: %w", ErrUsage, name, v, serr)
			}
		}
	})
	return err
}

// Parse parses args into fs and, with a non-empty prefix, overlays the environment (see Overlay). For -h or --help it writes fs's
// usage to stdout and returns flag.ErrHelp; for a mistake it writes one line to stderr saying how to get the
// help and returns an error that wraps ErrUsage and names the flag (the caller prints it once). fs should be created with
// flag.ContinueOnError.
func Parse(fs *flag.FlagSet, args []string, prefix string, getenv func(string) string, stdout, stderr io.Writer) error {
	usage := fs.Usage
	if usage == nil {
		usage = func() {
			fmt.Fprintf(fs.Output(), "Usage of %s:\n", fs.Name())
			fs.PrintDefaults()
		}
	}
	// The flag package prints its own message and the usage on a mistake; collect that, so help and
	// mistakes each go to their own stream, and a mistake's message is printed once, by the caller.
	var discard bytes.Buffer
	fs.SetOutput(&discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		showChoiceDefaults(fs)
		fs.SetOutput(stdout)
		fs.Usage()
		return err
	case err != nil:
		err = fmt.Errorf("%w: %w", ErrUsage, dashes(err))
	case fs.NArg() > 0:
		err = fmt.Errorf("%w: unexpected arguments %q", ErrUsage, fs.Args())
	case prefix != "":
		err = Overlay(fs, prefix, getenv)
	}
	fs.SetOutput(stderr)
	if err != nil {
		// Not the whole usage (a hundred lines that push the mistake off the screen): where to find it.
		hint := fs.Name() + " --help lists the flags"
		if prefix != "" {
			hint += " (each can also be set as " + prefix + "<NAME>)"
		}
		fmt.Fprintln(stderr, hint)
	}
	return err
}

// showChoiceDefaults adds "(default X)" to the usage of flags whose own flag.Value type prints its zero
// value as the default (choice flags such as --source-mode, whose zero value means their default): the flag
// package takes such a default for a zero value and leaves it out of the help. Its own types (bool, string,
// int ...) keep its rule.
func showChoiceDefaults(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		typ := reflect.TypeOf(f.Value)
		if f.DefValue == "" || typ.Kind() != reflect.Pointer || typ.Elem().PkgPath() == "flag" || strings.Contains(f.Usage, "(default ") {
			return
		}
		zero, ok := reflect.New(typ.Elem()).Interface().(flag.Value)
		if ok && zero.String() == f.DefValue {
			f.Usage += " (default " + f.DefValue + ")"
		}
	})
}

// dashes rewrites the flag package's "-name" in its messages into the "--name" form the help and the docs
// use.
func dashes(err error) error {
	msg := err.Error()
	for _, p := range []string{"for flag -", "not defined: -", "needs an argument: -"} {
		msg = strings.Replace(msg, p, p+"-", 1)
	}
	return errors.New(msg)
}

// ExitCode is the exit status for the error a command ends with: 0 for none or flag.ErrHelp, 2 for a
// command-line mistake (ErrUsage), 1 for anything else.
func ExitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		return 2
	}
	return 1
}
