package source

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dstream/dstream/stage"
)

// Kind is one kind of input. An input names its kind by the scheme of its
// URL (tcp://HOST:PORT); a name without a registered scheme is a file (or
// - for stdin). What a kind can do with the options (be followed, be
// replayed from a checkpoint) it declares here, so that Run asks the table
// and no switch elsewhere knows the kinds.
type Kind struct {
	// Scheme is the URL scheme, without "://"; "" for files and stdin.
	Scheme string
	// Open opens the input spec.
	Open func(spec string, op Opening) (Source, error)
	// NoFollow returns the usage error of --follow on the input spec (the
	// last one), or nil if it can be followed.
	NoFollow func(spec string) error
	// NoReplay returns the usage error of --checkpoint on the input spec,
	// or nil if it can be replayed.
	NoReplay func(spec string) error
	// Reconnects: the input can be connected again when it is lost
	// (--reconnect, on the last input).
	Reconnects bool
	// Track opens the tracker of o.Checkpoint over o.Inputs, all of this
	// kind and replayable; nil if the kind never replays.
	Track func(op Opening) (Tracker, error)
	// Tracked: the input is read through its Tracker with or without a
	// checkpoint (without one, Tracker.Dir is "" and nothing is written):
	// a watched directory, where the files a batch took decide what the
	// next may take.
	Tracked bool
	// Broker: the input is a broker's (kafka://, nats://, amqp://), which
	// takes the options of brokers (--group, --start, --meta-field,
	// --max-rate) and reads messages in the formats of feedFormats.
	Broker bool
	// Flags are the options that this kind takes and other kinds do not
	// (kindFlags names them), without their dashes: "subject".
	Flags []string
}

// Opening is what Kind.Open is given besides the input.
type Opening struct {
	Env     *stage.Env
	Options *Options
	// Follow: this is the last input, and --follow asks to read it on as
	// it grows.
	Follow bool
	// Reconnect: this is the last input, and --reconnect asks to connect
	// again when it is lost.
	Reconnect bool
}

// kinds is the table of Kinds by scheme; each kind registers itself in the
// file that implements it.
var kinds = map[string]*Kind{}

// Register adds a kind of input. It panics if the scheme is taken: two
// kinds of one scheme are a programming error.
func Register(k *Kind) {
	if _, dup := kinds[k.Scheme]; dup {
		panic(fmt.Sprintf("source: scheme %q registered twice", k.Scheme))
	}
	kinds[k.Scheme] = k
}

// kindOf returns the kind of the input spec.
func kindOf(spec string) *Kind {
	if scheme, _, ok := strings.Cut(spec, "://"); ok {
		if k := kinds[scheme]; k != nil {
			return k
		}
	}
	return kinds[""]
}

// resolve finds the kind of each input and checks that the kinds go with
// the options.
func resolve(o Options) ([]*Kind, error) {
	ks := make([]*Kind, len(o.Inputs))
	for i, spec := range o.Inputs {
		ks[i] = kindOf(spec)
	}
	last := len(o.Inputs) - 1
	if err := brokerOptions(o, ks); err != nil {
		return nil, err
	}
	for i, k := range ks {
		if k.Tracked && last > 0 {
			// Its tracker keeps the position of all the inputs.
			return nil, stage.UsageError("%s is read alone, without other inputs", o.Inputs[i])
		}
	}
	if k := ks[last]; o.Follow && k.NoFollow != nil {
		if err := k.NoFollow(o.Inputs[last]); err != nil {
			return nil, err
		}
	}
	if k := ks[last]; o.Reconnect && !k.Reconnects {
		name := o.Inputs[last]
		if name == "-" {
			name = "stdin"
		}
		return nil, stage.Hint(stage.UsageError("--reconnect connects again to a socket that is lost: %s is not one", name),
			"give a socket as the last input (sbatch --reconnect tcp://HOST:PORT), or leave --reconnect out")
	}
	if o.Checkpoint == "" {
		return ks, nil
	}
	for i, k := range ks {
		if k.NoReplay != nil {
			if err := k.NoReplay(o.Inputs[i]); err != nil {
				return nil, err
			}
		}
		if k.Track == nil {
			return nil, stage.UsageError("--checkpoint replays its inputs, and %s cannot be read again", o.Inputs[i])
		}
		if k != ks[0] {
			// One tracker keeps the position of all the inputs.
			return nil, stage.UsageError("--checkpoint replays inputs of one kind: %s and %s are not", o.Inputs[0], o.Inputs[i])
		}
	}
	return ks, nil
}

// kindFlags are the options set in o that only some kinds take, each with
// what it is for.
func kindFlags(o Options) map[string]string {
	set := map[string]string{}
	if o.Subject != "" {
		set["subject"] = "filters the subjects of a JetStream stream: give nats://HOST:PORT/STREAM"
	}
	if o.Declare {
		set["declare"] = "declares a missing RabbitMQ queue: give amqp://HOST:PORT/VHOST?queue=Q"
	}
	if o.Prefetch != 0 {
		set["prefetch"] = "bounds what RabbitMQ delivers ahead: give amqp://HOST:PORT/VHOST?queue=Q"
	}
	return set
}

// brokerOptions refuses the options of brokers without a broker's input,
// and the options of one kind without an input of that kind.
func brokerOptions(o Options, ks []*Kind) error {
	for flag, what := range kindFlags(o) {
		if !slices.ContainsFunc(ks, func(k *Kind) bool { return slices.Contains(k.Flags, flag) }) {
			return stage.Hint(stage.UsageError("--%s is not an option of %s", flag, strings.Join(o.Inputs, " ")), "--%s %s", flag, what)
		}
	}
	for _, k := range ks {
		if k.Broker {
			return nil
		}
	}
	var flag string
	switch {
	case o.Group != "":
		flag = "--group"
	case o.Start != "":
		flag = "--start"
	case o.MetaField != "":
		flag = "--meta-field"
	case o.MaxRate > 0:
		flag = "--max-rate"
	default:
		return nil
	}
	return stage.Hint(stage.UsageError("%s is an option of a broker's input", flag),
		"give a broker: kafka://HOST:PORT/TOPIC, nats://HOST:PORT/STREAM or amqp://HOST:PORT/VHOST?queue=Q")
}
