package workload

import "slices"

// percentileMS is the p-th percentile (0 < p ≤ 100) of samples in
// nanoseconds, in milliseconds, by the nearest-rank method: the smallest
// sample that at least p% of the samples do not exceed. Every sample is
// kept, so the figure is exact. It sorts samples; 0 when there are none.
func percentileMS(samples []int64, p int) float64 {
	n := len(samples)
	if n == 0 {
		return 0
	}
	slices.Sort(samples)
	rank := (n*p + 99) / 100 // ⌈n·p/100⌉, from 1
	return float64(samples[min(max(rank, 1), n)-1]) / 1e6
}
