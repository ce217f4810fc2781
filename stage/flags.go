package stage

import "github.com/urfave/cli/v2"

// AllFlags returns the flags of c's command line as Run gives them to
// urfave/cli: those common to every stage, then c.Flags (cli adds --help).
// A stage that reads its raw arguments before cli does learns from them
// which flags take a value.
func (c *Command) AllFlags() []cli.Flag {
	return append(commonFlags(c), c.Flags...)
}
