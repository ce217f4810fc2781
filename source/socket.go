package source

import "github.com/dstream/dstream/stage"

// Sockets (Spark's socketTextStream): tcp://HOST:PORT connects to a server,
// tcp-listen://HOST:PORT listens and accepts one connection, unix:///PATH
// and unix-listen:///PATH alike; each is read until the other side closes
// it. They are endpoints as --in and --out are (stage.OpenSocket), read as
// they come, and cannot be read again. With --reconnect the last one is
// connected again when it is lost (reconnect.go).
func init() {
	for _, scheme := range []string{"tcp", "tcp-listen", "unix", "unix-listen"} {
		Register(&Kind{Scheme: scheme, Open: openSocket, NoFollow: noFollowSocket, NoReplay: noReplaySocket, Reconnects: true})
	}
}

func openSocket(spec string, op Opening) (Source, error) {
	if op.Reconnect {
		return newRedialer(spec, op.Options, op.Env.Stop.RequestedC(), op.Env.Stderr)
	}
	r, err := stage.OpenSocket(spec)
	if err != nil {
		return nil, err
	}
	return one(Input{Name: spec, R: r}), nil
}

func noFollowSocket(string) error {
	return stage.UsageError("--follow follows a file that grows: a socket is read as it comes anyway")
}

func noReplaySocket(spec string) error {
	return stage.Hint(stage.UsageError("--checkpoint replays input files, and %s cannot be read again", spec),
		"a socket is not replayable: leave --checkpoint out (a crash loses the batches in flight), or have the sender write a file that sbatch --follow reads")
}
