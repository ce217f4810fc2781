package source

import (
	"errors"
	"fmt"
	"os"

	"github.com/dstream/dstream/stage"
)

// Files, and - for stdin: the kind of every input without a registered
// scheme. Files replay from a checkpoint by byte ranges (offsets.go); stdin
// cannot be read again.
func init() {
	Register(&Kind{
		Scheme: "",
		Open:   openFileInput,
		NoFollow: func(spec string) error {
			if spec != "-" {
				return nil
			}
			return stage.Hint(stage.UsageError("--follow follows the last FILE argument, not stdin"),
				"name the file to follow (sbatch --follow app.log), or pipe tail -F into sbatch")
		},
		NoReplay: func(spec string) error {
			if spec != "-" {
				return nil
			}
			return stage.Hint(stage.UsageError("--checkpoint replays input files, and stdin cannot be read again"),
				"name the input files as arguments (sbatch --checkpoint DIR FILE...), or leave --checkpoint out: without it a crash loses the batches in flight")
		},
		Track: func(op Opening) (Tracker, error) { return openTracker(*op.Options) },
	})
}

func openFileInput(spec string, op Opening) (Source, error) {
	if spec == "-" {
		return one(Input{Name: "stdin", R: nopClose{op.Env.Stdin}}), nil
	}
	fh, err := openFile(spec)
	if err != nil {
		return nil, err
	}
	in := Input{Name: spec, R: fh, At: fh}
	if op.Follow {
		if err := follow(&in, *op.Options, op.Env); err != nil {
			fh.Close()
			return nil, err
		}
	}
	return one(in), nil
}

func openFile(name string) (*os.File, error) {
	fh, err := os.Open(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, stage.Hint(fmt.Errorf("cannot read input: %w", err), "name an existing file, or - for stdin")
		}
		return nil, fmt.Errorf("cannot read input: %w", err)
	}
	return fh, nil
}
