package offheap

import (
	"errors"
	"math/rand/v2"
	"testing"
)

type rec struct {
	key  uint64
	val  uint32
	_    [4]byte
	more [20]byte
}

// resident counts the pages of the slab's reservation the kernel holds.
func resident(t *testing.T, s *Slab[rec]) int {
	t.Helper()
	n, err := Resident(s.r.mem)
	if err != nil {
		t.Fatalf("mincore: %v", err)
	}
	return n
}

func TestSlabLowestFirst(t *testing.T) {
	s := NewSlab[rec](1000)
	defer s.Close()
	for want := range uint32(200) {
		i, p, err := s.Alloc()
		if err != nil || i != want {
			t.Fatalf("Alloc = %d, %v; want %d", i, err, want)
		}
		p.key = uint64(i) + 1
	}
	for _, i := range []uint32{150, 3, 64, 77} {
		s.Free(i)
		if s.InUse(i) || s.At(i).key != 0 {
			t.Fatalf("slot %d still in use or not zeroed", i)
		}
	}
	s.Free(3) // twice: nothing happens
	if s.Len() != 196 {
		t.Fatalf("Len = %d, want 196", s.Len())
	}
	for _, want := range []uint32{3, 64, 77, 150, 200} {
		if i, p, _ := s.Alloc(); i != want || p.key != 0 {
			t.Fatalf("Alloc = %d (key %d), want %d and a zero record", i, p.key, want)
		}
	}
	for _, i := range []uint32{201, 1 << 20, ^uint32(0)} {
		if s.InUse(i) {
			t.Errorf("InUse(%d) for a slot never allocated", i)
		}
	}
}

func TestSlabFull(t *testing.T) {
	s := NewSlab[rec](70)
	defer s.Close()
	for range 70 {
		if _, _, err := s.Alloc(); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Alloc(); !errors.Is(err, ErrFull) {
		t.Fatalf("Alloc past max: %v, want ErrFull", err)
	}
	s.Free(5)
	if i, _, err := s.Alloc(); err != nil || i != 5 {
		t.Fatalf("Alloc after Free = %d, %v", i, err)
	}
}

func TestSlabRefusesPointers(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewSlab accepted a type with a pointer")
		}
	}()
	NewSlab[struct {
		a int
		p *int
	}](10)
}

// TestSlabTrim checks that Trim returns the pages of freed records to the
// kernel, both above the last record in use and in holes below it.
func TestSlabTrim(t *testing.T) {
	const n = 100_000
	s := NewSlab[rec](1 << 20)
	defer s.Close()
	for range n {
		_, p, err := s.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		p.key = 1
	}
	peak := resident(t, s)
	if min := n * 40 / pageSize; peak < min {
		t.Fatalf("%d pages resident for %d records, want at least %d", peak, n, min)
	}
	// Keep slot 0, one slot in the middle and nothing else.
	for i := uint32(1); i < n; i++ {
		if i != n/2 {
			s.Free(i)
		}
	}
	s.Trim()
	if got := resident(t, s); got > 4 {
		t.Fatalf("%d pages resident after Trim with 2 records (peak %d)", got, peak)
	}
	if s.At(0).key != 1 || s.At(n/2).key != 1 {
		t.Fatal("Trim lost a record in use")
	}
	// The slab keeps working over the discarded pages.
	for range 1000 {
		i, p, err := s.Alloc()
		if err != nil || p.key != 0 {
			t.Fatalf("Alloc after Trim: slot %d key %d err %v", i, p.key, err)
		}
		p.key = 2
	}
}

func TestIndexAgainstMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var x Index
	defer x.Close()
	model := map[pair]int{}
	live := []pair{}
	for step := range 60_000 {
		switch {
		case r.IntN(3) > 0 || len(live) == 0:
			// Few distinct hashes early on, so that runs collide.
			p := pair{r.Uint32N(uint32(64 + step)), r.Uint32N(1 << 20)}
			if err := x.Insert(p.h, p.slot); err != nil {
				t.Fatal(err)
			}
			model[p]++
			live = append(live, p)
		default:
			k := r.IntN(len(live))
			p := live[k]
			live[k] = live[len(live)-1]
			live = live[:len(live)-1]
			if !x.Delete(p.h, p.slot) {
				t.Fatalf("step %d: Delete(%v) found nothing", step, p)
			}
			if model[p]--; model[p] == 0 {
				delete(model, p)
			}
		}
		if step%4999 == 0 || step > 59_900 {
			checkIndex(t, &x, model)
		}
		if step == 40_000 {
			// Empty it most of the way, so that it shrinks.
			for len(live) > 100 {
				p := live[len(live)-1]
				live = live[:len(live)-1]
				x.Delete(p.h, p.slot)
				if model[p]--; model[p] == 0 {
					delete(model, p)
				}
			}
			if len(x.tab) > 8*minIndex {
				t.Fatalf("table of %d entries holds %d", len(x.tab), x.n)
			}
			checkIndex(t, &x, model)
		}
	}
	if x.Delete(1<<31, 5) {
		t.Fatal("Delete of an absent entry succeeded")
	}
}

type pair struct{ h, slot uint32 }

// checkIndex compares x with model, which counts each pair's entries.
func checkIndex(t *testing.T, x *Index, model map[pair]int) {
	t.Helper()
	total := 0
	for p, want := range model {
		total += want
		got := 0
		for pr := x.Find(p.h); ; {
			s, ok := pr.Next()
			if !ok {
				break
			}
			if s == p.slot {
				got++
			}
		}
		if got != want {
			t.Fatalf("Find(%d) yields slot %d %d times, want %d", p.h, p.slot, got, want)
		}
	}
	if x.Len() != total {
		t.Fatalf("Len = %d, want %d", x.Len(), total)
	}
}
