// Package stage is the runtime every dstream binary shares: the command line
// (flags common to all stages, --help, usage errors), input and output
// endpoints, exit codes and messages, signals, and --progress.
//
// A main is one line, `func main() { os.Exit(cmd.Run(os.Args, os.Stdin,
// os.Stdout, os.Stderr)) }`, around a Command; Run returns the exit code:
// 0 success, 1 runtime failure, 2 usage error. Messages go to stderr as
// "NAME: error: ..." and "NAME: hint: ...".
package stage

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"github.com/dstream/dstream/framing"
	"github.com/urfave/cli/v2"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Command describes one stage binary.
type Command struct {
	Name        string
	Usage       string // one line
	ArgsUsage   string
	Description string // longer help, with examples
	Flags       []cli.Flag
	// Input: the stage reads frames (--in); Output: it writes frames (--out).
	Input, Output bool
	// Action runs the stage. Usage problems it finds are returned as
	// UsageError so that the exit code is 2.
	Action func(*Env) error
}

// Error is an error with a hint for the user.
type Error struct {
	Err  error
	Hint string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Hint attaches a hint to err.
func Hint(err error, hint string, args ...any) error {
	if err == nil {
		return nil
	}
	return &Error{Err: err, Hint: fmt.Sprintf(hint, args...)}
}

// usageError marks an error as the user's wrong use of the command line.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// UsageError reports a usage problem: exit code 2.
func UsageError(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// Usage wraps err as a usage problem.
func Usage(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

// Run runs the command with args (args[0] is the program name) and returns
// the exit code.
func (c *Command) Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var env *Env
	// One command, not a command with subcommands: its flags are its
	// OPTIONS, not urfave/cli's "GLOBAL OPTIONS".
	cli.AppHelpTemplate = strings.NewReplacer("GLOBAL OPTIONS:", "OPTIONS:", "[global options]", "[options]").Replace(cli.AppHelpTemplate)
	app := &cli.App{
		Name:            c.Name,
		Usage:           c.Usage,
		ArgsUsage:       c.ArgsUsage,
		Description:     c.Description + helpFooter(c.Name),
		Flags:           append(commonFlags(c), c.Flags...),
		HideHelpCommand: true,
		Version:         Version(),
		Reader:          stdin,
		Writer:          stdout, // --help only; everything else goes to stderr
		ErrWriter:       stderr,
		ExitErrHandler:  func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{suggest(err, c.AllFlags())}
		},
		Action: func(ctx *cli.Context) error {
			var err error
			env, err = newEnv(c, ctx, stdin, stdout, stderr)
			if err != nil {
				return err
			}
			env.Args = args
			return env.run(c.Action)
		},
	}
	if len(args) == 2 || len(args) == 3 {
		if out, ok, err := generated(app, args[1:]); ok {
			if err != nil {
				return c.report(err, stderr)
			}
			io.WriteString(stdout, out)
			return ExitOK
		}
	}
	stop := startProfile(c.Name)
	err := app.Run(interspersed(args, app.Flags))
	stop()
	return c.report(err, stderr)
}

// generated answers the hidden commands that scripts/install.sh uses to
// make a stage's man page and its shell completion from its own flags, so
// that they never drift from the code:
//
//	STAGE --man                 the man page (section 1, roff)
//	STAGE --completion bash     a bash completion (zsh: with bashcompinit)
//	STAGE --completion fish     a fish completion
func generated(app *cli.App, args []string) (string, bool, error) {
	switch {
	case len(args) == 1 && args[0] == "--man":
		out, err := app.ToManWithSection(1)
		return out, true, err
	case len(args) == 2 && args[0] == "--completion":
		switch args[1] {
		case "fish":
			out, err := app.ToFishCompletion()
			return out, true, err
		case "bash", "zsh":
			names := []string{"--help", "-h", "--version", "-v"}
			for _, f := range app.Flags {
				for _, n := range f.Names() {
					if len(n) == 1 {
						names = append(names, "-"+n)
					} else {
						names = append(names, "--"+n)
					}
				}
			}
			slices.Sort(names)
			fn := "_" + strings.ReplaceAll(app.Name, "-", "_")
			out := fmt.Sprintf(`# %[1]s completion for bash (and zsh, after 'autoload -U +X bashcompinit && bashcompinit'),
# made by '%[1]s --completion %[3]s'.
%[2]s() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "%[4]s" -- "$cur"))
	fi
}
complete -o default -F %[2]s %[1]s
`, app.Name, fn, args[1], strings.Join(names, " "))
			return out, true, nil
		}
		return "", true, UsageError("--completion %s: want bash, zsh or fish", args[1])
	}
	return "", false, nil
}

// helpFooter ends every stage's --help: the exit codes and where the
// documentation is.
func helpFooter(name string) string {
	return fmt.Sprintf(`

Exit status: 0 done (also after SIGINT or SIGTERM, once the batch in hand
and the end of the stream are out), 1 an error (named on stderr, with a
hint), 2 a wrong command line. Documentation: docs/%s.md and docs/common.md
in the source tree.`, name)
}

// report prints err and returns the exit code it calls for.
func (c *Command) report(err error, stderr io.Writer) int {
	if err == nil || IsClosedPipe(err) {
		return ExitOK
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "%s: error: %v\n", c.Name, ue.error)
		if h := hintOf(err); h != "" {
			fmt.Fprintf(stderr, "%s: hint: %s\n", c.Name, h)
		} else {
			fmt.Fprintf(stderr, "%s: hint: see '%s --help'\n", c.Name, c.Name)
		}
		return ExitUsage
	}
	fmt.Fprintf(stderr, "%s: error: %v\n", c.Name, err)
	if h := hintOf(err); h != "" {
		fmt.Fprintf(stderr, "%s: hint: %s\n", c.Name, h)
	}
	return ExitFailure
}

// Version is the build's version: the module version when built from a
// tagged module, else the VCS revision (with "+dirty" for uncommitted
// changes), else "devel".
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return "devel"
	}
	return "devel-" + rev[:min(12, len(rev))] + dirty
}

// suggest turns urfave/cli's error for an unknown flag into "unknown flag
// --X", with "did you mean --Y?" when one of the command's flags is a typo
// away (at most one edit in four letters, and at least one). urfave/cli's
// own suggestion would go to stdout, which carries frames, and names far
// matches too.
func suggest(err error, flags []cli.Flag) error {
	const unknown = "flag provided but not defined: -"
	msg := err.Error()
	if strings.HasSuffix(msg, ": parse error") && strings.Contains(msg, "invalid value") {
		// A duration without its unit (-i 2) or with a space (-i '2 s').
		for _, f := range flags {
			if _, ok := f.(*cli.DurationFlag); !ok {
				continue
			}
			for _, n := range f.Names() {
				if strings.HasSuffix(msg, " for flag -"+n+": parse error") {
					return Hint(err, "write a duration as a number and its unit, with no space: 500ms, 2s, 1m, 1h30m")
				}
			}
		}
		return err
	}
	i := strings.Index(msg, unknown)
	if i < 0 {
		return err
	}
	name := strings.TrimLeft(msg[i+len(unknown):], "-")
	best, bestD := "", max(1, len(name)/4)+1
	for _, f := range flags {
		for _, n := range f.Names() {
			if d := editDistance(name, n); d < bestD {
				best, bestD = n, d
			}
		}
	}
	err = fmt.Errorf("unknown flag --%s", name)
	if best == "" {
		return err
	}
	dash := "--"
	if len(best) == 1 {
		dash = "-"
	}
	return Hint(err, "did you mean %s%s?", dash, best)
}

// editDistance is the number of edits (a letter inserted, deleted, changed,
// or two neighbours swapped) that make a into b.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

func hintOf(err error) string {
	var he *Error
	if errors.As(err, &he) {
		return he.Hint
	}
	var hinter interface{ Hint() string } // errors of the libraries that carry advice
	if errors.As(err, &hinter) {
		return hinter.Hint()
	}
	switch {
	case errors.Is(err, framing.ErrNotDstream):
		return "dstream stages read the framed stream of another stage: put sbatch in front (sbatch --once < file | ...)"
	case errors.Is(err, framing.ErrEmpty):
		return "there was no input at all: a stage reads the framed stream of another, as in 'sbatch --once < FILE | STAGE'; if a stage before this one failed, look at its error"
	case errors.Is(err, framing.ErrTruncated):
		return "the stage before this one stopped before ending its stream: look at its error"
	}
	return ""
}

// IsClosedPipe reports whether err comes from writing to a pipe whose
// reader has gone away (EPIPE), which ends a stage quietly, as head does to
// its upstream. A connection is no pipe: a broken pipe or a reset on a
// socket (an --out endpoint, an HTTP server, a database) means the other
// side died or dropped the connection, and data did not arrive: an error.
func IsClosedPipe(err error) bool {
	var ne *net.OpError
	return errors.Is(err, syscall.EPIPE) && !errors.As(err, &ne)
}

// OrList joins names as a message lists them: "a, b or c".
func OrList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// ParseList splits a comma-separated flag value, trimming spaces and dropping
// empty items.
func ParseList(values ...string) []string {
	var out []string
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// interspersed moves the flags given after an argument before the
// arguments, as GNU getopt does, since urfave/cli stops reading flags at
// the first argument: "sbatch kafka://HOST/clicks --group wc" is
// "sbatch --group wc kafka://HOST/clicks". "--" ends the flags; "-" is an
// argument (stdin). A flag it does not know stays where it is, for the
// error to name.
func interspersed(args []string, flags []cli.Flag) []string {
	if len(args) < 2 {
		return args
	}
	value := map[string]bool{} // known flags, by every name: whether it takes a value
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			value[n] = !isBool
		}
	}
	out := []string{args[0]}
	var rest []string
	dash := false // an argument begins with "-": "--" must keep it one
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			for _, r := range args[i+1:] {
				dash = dash || strings.HasPrefix(r, "-")
			}
			rest = append(rest, args[i+1:]...)
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takes, known := value[name]
		if len(a) < 2 || a[0] != '-' || !known {
			if len(a) > 1 && a[0] == '-' {
				out = append(out, a) // an unknown flag: its error
				continue
			}
			rest = append(rest, a)
			continue
		}
		out = append(out, a)
		if takes && !hasValue && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	if dash {
		out = append(out, "--")
	}
	return append(out, rest...)
}
