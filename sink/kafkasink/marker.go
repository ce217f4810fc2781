package kafkasink

// KeepsCommits tells the sink that the topic keeps its own record of the
// last batch committed (written in the batch's transaction) and skips a
// replayed batch by it: the checkpoint's commit file is then only a copy
// (checkpoint.Committer.Copy).
func (p *producer) KeepsCommits() bool { return p.txnID != "" }
