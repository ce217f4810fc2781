// Package stateflags is the command line of a stage whose state the
// checkpoint keeps (sreduce, swindow, sdedup, sjoin): --checkpoint DIR and
// --name NAME, declared and checked in one place.
package stateflags

import (
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/stage"
	"github.com/urfave/cli/v2"
)

// Flags declares --checkpoint and --name in the help category category:
// the stage saves what after each batch (e.g. "the running state"), under
// its state's default name stageName.
func Flags(stageName, what, category string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "checkpoint", Usage: "save " + what + " after each batch in `DIR`/state/NAME, read back on restart", Category: category},
		&cli.StringFlag{Name: "name", Value: stageName, Usage: "the `NAME` of this stage's state in the checkpoint directory", Category: category},
	}
}

// Parse returns --checkpoint ("" without one) and --name, checked: errors
// are stage.UsageError.
func Parse(c *cli.Context) (dir, name string, err error) {
	dir, name = c.String("checkpoint"), c.String("name")
	if c.IsSet("checkpoint") && dir == "" {
		return "", "", stage.UsageError("--checkpoint needs a directory")
	}
	if err := checkpoint.ValidName(name); err != nil {
		return "", "", stage.UsageError("--name: %v", err)
	}
	return dir, name, nil
}
