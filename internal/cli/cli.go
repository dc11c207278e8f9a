// Package cli is the tubfarm command: an operator's tool for a Tahoe-LAFS
// node directory. cmd/tubfarm is a thin main around [Run]; the tests call
// Run directly.
//
// Subcommands: servers (the merged server map), pin and unpin (edit
// private/servers.yaml), check (every problem of every file), status (run
// the broker) and version. Only pin and unpin write, and only
// private/servers.yaml (plus its lock file). docs/cli.md is the manual.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/tubfarm/tubfarm/internal/termsafe"
)

// Exit statuses, stable for scripts.
const (
	ExitOK      = 0 // success; check found nothing; status: every server connected
	ExitFailure = 1 // the command failed; check found errors; status: not every server connected
	ExitUsage   = 2 // bad command line
)

// Env is what a command may use of the process: its output streams, whether
// stdout is a terminal, and the environment.
type Env struct {
	Stdout, Stderr io.Writer
	// TTY reports that Stdout is a terminal that takes ANSI escape
	// sequences: tables may use colour and redraw in place.
	TTY bool
	// Getenv reads an environment variable; nil means os.Getenv.
	Getenv func(string) string
}

func (e *Env) getenv(k string) string {
	if e.Getenv == nil {
		return os.Getenv(k)
	}
	return e.Getenv(k)
}

// A command is one subcommand.
type command struct {
	name     string
	args     string // synopsis after the flags
	summary  string
	example  string
	setFlags func(fs *flag.FlagSet, c *cmdContext)
	run      func(ctx context.Context, c *cmdContext) int
	nodeDir  bool // takes -d
	maxArgs  int  // positional arguments allowed
	minArgs  int
}

// cmdContext is one invocation of a command.
type cmdContext struct {
	env     *Env
	stdout  io.Writer
	stderr  io.Writer
	name    string
	dir     string   // -d
	json    bool     // --json, where the command has it
	args    []string // positional arguments
	command *command
	opts    any             // the command's own flags
	given   map[string]bool // flags set on the command line
}

// usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// commands in the order the usage lists them.
var commands []*command

func init() {
	commands = []*command{serversCmd, pinCmd, unpinCmd, checkCmd, statusCmd, versionCmd}
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// Run runs the tubfarm command with args (without the program name) and
// returns its exit status.
func Run(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 {
		mainUsage(env.Stderr)
		return ExitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			if c := lookup(args[1]); c != nil {
				c.usage(env.Stdout)
				return ExitOK
			}
			fmt.Fprintf(env.Stderr, "tubfarm help: unknown command %q\n", args[1])
			return ExitUsage
		}
		mainUsage(env.Stdout)
		return ExitOK
	case "-version", "--version":
		args = []string{"version"}
	}
	c := lookup(args[0])
	if c == nil {
		fmt.Fprintf(env.Stderr, "tubfarm: unknown command %q\n", args[0])
		mainUsage(env.Stderr)
		return ExitUsage
	}
	cc, err := c.parse(args[1:], &env)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "tubfarm %s: %v\n", c.name, err)
		fmt.Fprintf(env.Stderr, "Run 'tubfarm %s -h' for usage.\n", c.name)
		return ExitUsage
	}
	return c.run(ctx, cc)
}

func mainUsage(w io.Writer) {
	fmt.Fprintf(w, "tubfarm: an operator's tool for a Tahoe-LAFS node directory.\n\nUsage:\n\n  tubfarm COMMAND [flags] [arguments]\n\nCommands:\n\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'tubfarm COMMAND -h' for a command's flags and an example.\n"+
		"Exit status: 0 success, 1 failure (check: errors found; status: not all connected), 2 usage.\n")
}

func (c *command) flagSet(cc *cmdContext) *flag.FlagSet {
	fs := flag.NewFlagSet("tubfarm "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if c.nodeDir {
		fs.StringVar(&cc.dir, "d", "", "the Tahoe node `directory` (default ~/.tahoe, as Tahoe's)")
		fs.StringVar(&cc.dir, "node-directory", "", "same as -d")
	}
	if c.setFlags != nil {
		c.setFlags(fs, cc)
	}
	return fs
}

func (c *command) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: tubfarm %s", c.name)
	if c.nodeDir {
		fmt.Fprintf(w, " [-d NODEDIR]")
	}
	fmt.Fprintf(w, " %s\n\n%s\n", c.args, c.summary)
	fs := c.flagSet(&cmdContext{})
	fs.SetOutput(w)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintf(w, "\nFlags:\n")
		fs.PrintDefaults()
	}
	if c.example != "" {
		fmt.Fprintf(w, "\nExample:\n%s\n", c.example)
	}
}

// parse parses a command line in which flags and arguments may be mixed
// ("pin SERVER --hint H"); "--" ends the flags.
func (c *command) parse(args []string, env *Env) (*cmdContext, error) {
	cc := &cmdContext{env: env, stdout: env.Stdout, stderr: env.Stderr, name: c.name, command: c}
	fs := c.flagSet(cc)
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.usage(env.Stdout)
			return nil, err
		}
		if err != nil {
			return nil, &usageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			cc.args = append(cc.args, rest...)
			break
		}
		cc.args = append(cc.args, rest[0])
		args = rest[1:]
	}
	cc.given = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { cc.given[f.Name] = true })
	if len(cc.args) < c.minArgs {
		return nil, usagef("missing %s", c.args)
	}
	if len(cc.args) > c.maxArgs {
		return nil, usagef("unexpected argument %q", cc.args[c.maxArgs])
	}
	if c.nodeDir {
		dir, err := nodeDir(cc.dir, env)
		if err != nil {
			return nil, err
		}
		cc.dir = dir
	}
	return cc, nil
}

// nodeDir returns the node directory: -d, else ~/.tahoe as in Tahoe.
func nodeDir(d string, env *Env) (string, error) {
	if d == "" {
		home := env.getenv("HOME")
		if home == "" {
			h, err := os.UserHomeDir()
			if err != nil {
				return "", usagef("no -d and no home directory: %v", err)
			}
			home = h
		}
		return filepath.Join(home, ".tahoe"), nil
	}
	if rest, ok := strings.CutPrefix(d, "~/"); ok {
		if home := env.getenv("HOME"); home != "" {
			return filepath.Join(home, rest), nil
		}
	}
	return d, nil
}

// fail prints "tubfarm CMD: msg" on stderr and returns ExitFailure.
func (c *cmdContext) fail(format string, a ...any) int {
	fmt.Fprintf(c.stderr, "tubfarm %s: %s\n", c.name, fmt.Sprintf(format, a...))
	return ExitFailure
}

// version is the module version the binary was built from.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

var versionCmd = &command{
	name:    "version",
	summary: "Print tubfarm's version.",
	example: "  tubfarm version",
	run: func(_ context.Context, c *cmdContext) int {
		fmt.Fprintf(c.stdout, "tubfarm %s\n", version())
		return ExitOK
	},
}

// writeJSON writes v as indented JSON and a newline. Characters that
// encoding/json leaves raw but a terminal would act on (C1 controls, bidi
// overrides) are written as \u escapes: the value decodes the same.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(termsafe.JSON(b), '\n'))
	return err
}
