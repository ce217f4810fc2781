package checkpoint

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// State is a stateful stage's part of a checkpoint (sreduce --running,
// swindow): it restores the state once, when the first batch arrives, and
// saves it after each batch, before the batch's output leaves the stage
// (docs/design.md, "The checkpoint protocol"). The stage owns the state's
// encoding; State owns when it is read and written, and what a problem
// with it means for the user.
type State struct {
	store   *Store
	fp      string
	what    string // what keeps its own state, for hints: "each window configuration"
	started bool
}

// OpenState opens the state of the stage name in the checkpoint directory
// root, locked for the life of the process. fingerprint names the
// configuration whose state it is; what says in a hint which configuration
// that is ("each set of keys and aggregates").
func OpenState(root, name, fingerprint, what string) (*State, error) {
	store, err := OpenStore(root, name)
	if err != nil {
		return nil, err
	}
	return &State{store: store, fp: fingerprint, what: what}, nil
}

// Store is the snapshots' store.
func (s *State) Store() *Store { return s.store }

// Begin is called at the start of every batch; at the first, it restores
// the state as of the batch before it (Store.Restore) through load.
// replaying tells whether the pipeline's source replays from this
// checkpoint (Store.Replaying).
func (s *State) Begin(first uint64, replaying bool, load func(data []byte) error) error {
	if s.started {
		return nil
	}
	s.started = true
	s.store.Replaying = replaying
	snap, err := s.store.Restore(first, s.fp)
	if err != nil || snap == nil {
		return s.refuse(err)
	}
	if err := load(snap.Data); err != nil {
		return s.refuse(fmt.Errorf("%s: %w: %w", s.store.Path(snap.Batch), ErrCorrupt, err))
	}
	return nil
}

// Save writes the state after batch id, of batch time t, through write.
func (s *State) Save(id uint64, t int64, write func(w io.Writer) error) error {
	return s.store.Save(Header{Batch: id, Time: t, Fingerprint: s.fp}, write)
}

// startOver is the one way out when a stage's state is lost: the sink has
// the output of batches whose state is gone, and only a run from the start
// gives it again.
const startOver = "start the pipeline over: a new --checkpoint directory and an empty sink (a new table, an empty --files directory)"

func (s *State) refuse(err error) error {
	var m *MismatchError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &m) && layout(m.Have) != layout(m.Want):
		return &hintError{err, fmt.Sprintf("%s keeps its own state, and this one is of another layout (%s; this dstream reads %s), which no option reads: %s", s.what, layout(m.Have), layout(m.Want), startOver)}
	case errors.As(err, &m):
		return &hintError{err, fmt.Sprintf("%s keeps its own state: give this stage the --name or the options it had, another --name for a new state, or %s", s.what, startOver)}
	case errors.Is(err, ErrCorrupt):
		return &hintError{err, "the state cannot be rebuilt from this checkpoint (the batches before it are not replayed): restore the file from a backup, or " + startOver}
	case errors.Is(err, ErrNoState):
		return &hintError{err, "a stateful stage takes part in its checkpoint from the first batch: give it the --name it had, or " + startOver}
	}
	return err
}

// layout is the first word of a fingerprint, the stage and the version of
// its state's layout ("swindow/2").
func layout(fp string) string {
	l, _, _ := strings.Cut(fp, " ")
	return l
}

// hintError is an error with advice for the user, which the stage runtime
// prints under it.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }
func (e *hintError) Hint() string  { return e.hint }
