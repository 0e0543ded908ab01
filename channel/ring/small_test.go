package ring

import (
	"testing"

	"github.com/ringfuse/ringfuse/wire"
)

func TestSmallEntries(t *testing.T) {
	const full = 1 << 20
	for _, tc := range []struct {
		name                string
		o                   Options
		per, threads        int
		wantSmall, wantSize int
		wantErr             bool
	}{
		{name: "off", o: Options{}, per: 8, threads: 1, wantSmall: 0, wantSize: full},
		{name: "default size", o: Options{SmallEntries: 6}, per: 8, threads: 1, wantSmall: 6, wantSize: wire.FUSE_MIN_READ_BUFFER},
		{name: "size", o: Options{SmallEntries: 4, SmallPayload: 65536}, per: 8, threads: 1, wantSmall: 4, wantSize: 65536},
		{name: "split over threads", o: Options{SmallEntries: 6}, per: 4, threads: 2, wantSmall: 3, wantSize: wire.FUSE_MIN_READ_BUFFER},
		{name: "no full entry left", o: Options{SmallEntries: 8}, per: 8, threads: 1, wantErr: true},
		{name: "none per thread", o: Options{SmallEntries: 1}, per: 4, threads: 2, wantErr: true},
		{name: "below the kernel's minimum", o: Options{SmallEntries: 2, SmallPayload: 4096}, per: 8, threads: 1, wantErr: true},
		{name: "not small", o: Options{SmallEntries: 2, SmallPayload: full}, per: 8, threads: 1, wantErr: true},
		{name: "negative", o: Options{SmallEntries: -1}, per: 8, threads: 1, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			small, size, err := smallEntries(&tc.o, tc.per, tc.threads, full)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("smallEntries = %d, %d, want an error", small, size)
				}
				return
			}
			if err != nil || small != tc.wantSmall || size != tc.wantSize {
				t.Fatalf("smallEntries = %d, %d, %v; want %d, %d", small, size, err, tc.wantSmall, tc.wantSize)
			}
		})
	}
}

func TestParseCPUList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 1, true}, {"0-1\n", 2, true}, {"0-63", 64, true}, {"0,2-3", 3, true},
		{"0-3,8-11", 8, true}, {"", 0, false}, {"a", 0, false}, {"3-1", 0, false}, {"0-", 0, false},
	} {
		n, err := parseCPUList(c.in)
		if (err == nil) != c.ok || n != c.want {
			t.Errorf("parseCPUList(%q) = %d, %v; want %d, ok %v", c.in, n, err, c.want, c.ok)
		}
	}
}
