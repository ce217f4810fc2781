package stage

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/framing"
)

// A pipeline whose source replays from a checkpoint (sbatch --checkpoint
// DIR) says so in its stream, before its first batch: a Checkpoint frame
// with the directory's id. Every stage passes it on. A stage that must take
// part (a sink, which commits what it wrote; a stateful stage, which
// restores its state) refuses the stream when it has no checkpoint, or
// another one: either would lose or double batches at the next restart,
// silently. See docs/design.md, "The checkpoint protocol".

// ckPart is the stage's part in a checkpoint.
type ckPart struct {
	dir  string // --checkpoint, "" without
	id   string // the directory's id
	need string // without dir: why the stage needs one in a replaying pipeline

	replaying bool // the source announced its checkpoint
	whole     bool // the stage keeps one state for the whole stream
}

// KeepsWholeState declares that the stage keeps one state for the whole
// stream, not one per source partition: it refuses a scaled-out source
// (sbatch --scale-out), whose partitions move between copies of the
// pipeline and would take none of the state along.
func (e *Env) KeepsWholeState() { e.ck.whole = true }

// UseCheckpoint declares the stage's part in a checkpoint, before Loop: dir
// is its --checkpoint ("" without), and need says why the stage must have
// one when its source replays from a checkpoint ("" if it need not), as in
// "ssink commits each batch it wrote, so that a restart replays the others".
func (e *Env) UseCheckpoint(dir, need string) error {
	e.ck.dir, e.ck.need = dir, need
	if dir == "" {
		return nil
	}
	id, err := checkpoint.ID(dir)
	if err != nil {
		return fmt.Errorf("--checkpoint: %w", err)
	}
	e.ck.id = id
	return nil
}

// Replaying reports whether the stream comes from a source that replays
// from a checkpoint. It is known before the first batch.
func (e *Env) Replaying() bool { return e.ck.replaying }

// AnnounceCheckpoint writes the Checkpoint frame of a source keeping its
// checkpoint in dir, before its first batch.
func (e *Env) AnnounceCheckpoint(dir string) error {
	id, err := checkpoint.ID(dir)
	if err != nil {
		return fmt.Errorf("--checkpoint: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("--checkpoint: %w", err)
	}
	return e.Out.Checkpoint(id, abs)
}

// checkpointFrame handles a Checkpoint frame of the input.
func (e *Env) checkpointFrame(f *framing.Frame) error {
	id, dir := f.Checkpoint()
	switch {
	case e.ck.dir != "" && id != e.ck.id:
		return Hint(fmt.Errorf("the source of the stream keeps its checkpoint in %s, and %s keeps another one in %s", dir, e.Name, e.ck.dir),
			"the stages of a pipeline share one --checkpoint directory: give %s --checkpoint %s", e.Name, dir)
	case e.ck.dir == "" && e.ck.need != "":
		return Hint(fmt.Errorf("the source of the stream replays from the checkpoint %s after a crash, and %s has no --checkpoint: %s", dir, e.Name, e.ck.need),
			"give %s --checkpoint %s too", e.Name, dir)
	case e.ck.whole && exists(filepath.Join(dir, checkpoint.ScaleOutFile)):
		return Hint(fmt.Errorf("the source of the stream is scaled out (sbatch --scale-out), and %s keeps one state for the whole stream, not one per partition: a partition that moves to another copy would take none of it along", e.Name),
			"only sreduce --running keeps its state per partition so far: run %s as a single copy, reading a topic without --scale-out (docs/scale-out.md)", e.Name)
	}
	e.ck.replaying = true
	if e.Out != nil {
		return e.Out.Checkpoint(id, dir)
	}
	return nil
}

// exists reports whether the file path exists.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
