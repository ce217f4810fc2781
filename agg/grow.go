package agg

// push appends v to s, doubling its capacity when full. The per-group
// slices of a table grow a group at a time, and append's growth of 1.25x
// for large slices copied each of them about four times over on the way
// to a million groups (a third of sreduce's time over 1 M distinct keys);
// doubling copies each element about once.
func push[T any](s []T, v T) []T {
	if len(s) == cap(s) {
		n := make([]T, len(s), max(2*cap(s), 64))
		copy(n, s)
		s = n
	}
	return append(s, v)
}

// pushAll appends vs to s, at least doubling its capacity when it must grow.
func pushAll[T any](s []T, vs ...T) []T {
	if len(s)+len(vs) > cap(s) {
		n := make([]T, len(s), max(2*cap(s), len(s)+len(vs), 64))
		copy(n, s)
		s = n
	}
	return append(s, vs...)
}
