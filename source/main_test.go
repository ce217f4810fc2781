package source

import "time"

// The tests run sources with a checkpoint and, mostly, no sink to commit:
// each run would wait the whole commitWait at its end.
func init() { commitWait = 200 * time.Millisecond }
