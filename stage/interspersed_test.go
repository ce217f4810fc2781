package stage

import (
	"slices"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestInterspersed(t *testing.T) {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "group", Aliases: []string{"g"}},
		&cli.BoolFlag{Name: "once"},
		&cli.DurationFlag{Name: "interval", Aliases: []string{"i"}},
	}
	for _, c := range []struct{ in, want []string }{
		{[]string{"sbatch", "-i", "2s", "kafka://h/t", "--group", "wc", "--once"}, []string{"sbatch", "-i", "2s", "--group", "wc", "--once", "kafka://h/t"}},
		{[]string{"sbatch", "a.log", "--group=wc", "b.log"}, []string{"sbatch", "--group=wc", "a.log", "b.log"}},
		{[]string{"sbatch", "-", "--once"}, []string{"sbatch", "--once", "-"}},
		{[]string{"sbatch", "a", "--", "--once", "-x"}, []string{"sbatch", "--", "a", "--once", "-x"}},
		{[]string{"sbatch", "a", "--nope", "b"}, []string{"sbatch", "--nope", "a", "b"}},
		{[]string{"sbatch", "a", "--group"}, []string{"sbatch", "--group", "a"}},
		{[]string{"sbatch"}, []string{"sbatch"}},
	} {
		if got := interspersed(c.in, flags); !slices.Equal(got, c.want) {
			t.Errorf("interspersed(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
