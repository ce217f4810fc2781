package sqlsink

// KeepsCommits tells the sink that the table keeps its own record of the
// last batch committed (the dstream_commits row, written in the batch's
// transaction) and skips a replayed batch by it: the checkpoint's commit
// file is then only a copy (checkpoint.Committer.Copy).
func (f *tableWriter) KeepsCommits() bool { return f.idem }
