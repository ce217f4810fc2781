package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/internal/kafkatest"
	"github.com/twmb/franz-go/pkg/kfake"
)

// topicLines reads topic back (read_committed): each message as
// "BATCHID KEY VALUE", by partition and offset.
func topicLines(t testing.TB, c *kfake.Cluster, topic string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	recs, err := kafkatest.Read(ctx, kafkatest.Seeds(c), topic)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range recs {
		id := ""
		for _, h := range r.Headers {
			if h.Key == "dstream-batch-id" {
				id = string(h.Value)
			}
		}
		key := "<null>"
		if r.Key != nil {
			key = string(r.Key)
		}
		b.WriteString(id + " " + key + " " + string(r.Value) + "\n")
	}
	return b.String()
}

// TestKafkaExactlyOnce runs batches 0-2, then 1-3 again with the same
// checkpoint: batches 1 and 2 are not sent twice; and a batch that Kafka
// committed but the checkpoint did not is skipped, and committed.
func TestKafkaExactlyOnce(t *testing.T) {
	c, _ := kafkatest.Cluster(t, 1, 1, "words")
	url := kafkatest.URL(c, "words")
	ck := filepath.Join(t.TempDir(), "ck")
	bs := []batch{
		{0, t0, lines("a")},
		{1, t0 + 1000, lines("b", "c")},
		{2, t0 + 2000, lines("d")},
		{3, t0 + 3000, lines("e")},
	}
	runOK(t, stream(t, bs[:3]...), "--kafka", url, "--key", "value", "--checkpoint", ck)
	_, errOut, code := run(stream(t, bs[1:]...), "--kafka", url, "--key", "value", "--checkpoint", ck, "--progress", "-")
	if code != 0 || !strings.Contains(errOut, `"batchId":2,"batchTime":1700000002000,`) ||
		!strings.Contains(errOut, `"numInputRows":1,"numOutputRows":0,`) {
		t.Errorf("second run: exit %d, %s", code, errOut)
	}
	b4 := batch{4, t0 + 4000, lines("f")}
	runOK(t, stream(t, b4), "--kafka", url, "--key", "value", "--checkpoint", ck)
	if err := os.Remove(filepath.Join(ck, "commits", "4")); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = run(stream(t, b4, batch{5, t0 + 5000, lines("g")}), "--kafka", url, "--key", "value", "--checkpoint", ck, "--progress", "-")
	if code != 0 || !strings.Contains(errOut, `"batchId":4,"batchTime":1700000004000,`) ||
		!strings.Contains(errOut, `"numInputRows":1,"numOutputRows":0,`) {
		t.Errorf("replayed batch 4: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(ck, "commits", "4")); err != nil {
		t.Errorf("batch 4 not committed in the checkpoint: %v", err)
	}
	want := `0 a {"value":"a"}
1 b {"value":"b"}
1 c {"value":"c"}
2 d {"value":"d"}
3 e {"value":"e"}
4 f {"value":"f"}
5 g {"value":"g"}
`
	if got := topicLines(t, c, "words"); got != want {
		t.Errorf("the topic has\n%swant\n%s", got, want)
	}
}

func TestKafkaUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--kafka", "kafka://h:1/t", "--key", "a,b"}, "ssink: error: --key a,b: --kafka takes one field, whose value is the message key\n"},
		{[]string{"--kafka", "kafka://h:1/t", "--table", "x"}, "ssink: error: --table applies to --sqlite or --postgres\n"},
		{[]string{"--kafka", "kafka://h:1/t", "--format", "console"}, "ssink: error: --format console does not go with --kafka: a message holds one record\n"},
		{[]string{"--kafka", "h:1/t"}, `ssink: error: --kafka "h:1/t": want a kafka:// URL` + "\n"},
		{[]string{"--kafka", "kafka://h:1/t", "--sqlite", "x.db"}, "ssink: error: --sqlite does not go with --files, --exec, --post, --kafka, --nats or --amqp: run two ssink stages (after tee) for two outputs\n"},
	} {
		_, errOut, code := run(stream(t), tc.args...)
		if code != 2 || !strings.HasPrefix(errOut, tc.want) {
			t.Errorf("%s: exit %d, %q, want exit 2, %q", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}
}
