package devfuse

import (
	"testing"
	"unsafe"
)

func TestAlignedAfter(t *testing.T) {
	for _, hdr := range []int{16, 80} {
		for _, n := range []int{8192, 1<<20 + 4096} {
			b := alignedAfter(n, hdr)
			if len(b) != n {
				t.Errorf("len %d, want %d", len(b), n)
			}
			if a := uintptr(unsafe.Pointer(&b[hdr])) % dataAlign; a != 0 {
				t.Errorf("hdr %d: data at %d mod %d", hdr, a, dataAlign)
			}
		}
	}
}
