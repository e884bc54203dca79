package ops_test

import (
	"testing"

	"github.com/remediator/remediator/ops"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	v := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 100}
	for _, tt := range []struct {
		p    int
		want int64
	}{{50, 10}, {95, 19}, {99, 100}, {100, 100}, {1, 1}} {
		if got := ops.Percentile(v, tt.p); got != tt.want {
			t.Errorf("p%d = %d, want %d", tt.p, got, tt.want)
		}
	}
	if got := ops.Percentile([]int64{7}, 95); got != 7 {
		t.Errorf("p95 of one value = %d", got)
	}
}
