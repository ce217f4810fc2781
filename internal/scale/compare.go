package scale

import (
	"fmt"
	"slices"
	"strconv"
)

// diff describes how the table got differs from want, a line per user
// whose count differs ("u042: want 61, got 122"; "-" for a user missing
// from one side), in the order of the users' names; nil if they are equal.
func diff(want, got map[string]int64) []string {
	var users []string
	for u := range want {
		users = append(users, u)
	}
	for u := range got {
		if _, ok := want[u]; !ok {
			users = append(users, u)
		}
	}
	slices.Sort(users)
	var d []string
	for _, u := range users {
		w, inWant := want[u]
		g, inGot := got[u]
		if inWant && inGot && w == g {
			continue
		}
		d = append(d, fmt.Sprintf("%s: want %s, got %s", u, count(w, inWant), count(g, inGot)))
	}
	return d
}

func count(n int64, ok bool) string {
	if !ok {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

// summary sums up a diff of want and got in a phrase: "3 of 1000 users
// differ (2 short, 1 over): 177 events missing, 12 counted twice or more".
// It tells a lost record from one counted twice at a glance.
func summary(want, got map[string]int64) string {
	var short, over, differ int
	var missing, extra int64
	for u, w := range want {
		g := got[u]
		switch {
		case g < w:
			short++
			missing += w - g
		case g > w:
			over++
			extra += g - w
		}
	}
	for u, g := range got {
		if _, ok := want[u]; !ok {
			over++
			extra += g
		}
	}
	differ = short + over
	if differ == 0 {
		return "equal"
	}
	return fmt.Sprintf("%d of %d users differ (%d short, %d over): %d events missing, %d too many",
		differ, len(want), short, over, missing, extra)
}
