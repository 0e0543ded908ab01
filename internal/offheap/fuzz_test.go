package offheap

import "testing"

// FuzzIndex applies a fuzzed sequence of inserts and deletes, over few
// hashes so that runs collide and wrap, to an Index and to a map, and
// compares them after every step; Slab allocations and frees follow the
// same program and must keep lowest-first order.
func FuzzIndex(f *testing.F) {
	f.Add([]byte{0, 1, 0, 2, 1, 1, 0, 1, 0, 1})
	f.Add([]byte{0, 7, 0, 7, 0, 7, 1, 7, 1, 7, 2, 0, 2, 0, 3, 0})
	f.Fuzz(func(t *testing.T, prog []byte) {
		var x Index
		defer x.Close()
		s := NewSlab[rec](1 << 12)
		defer s.Close()
		model := map[pair]int{}
		var slots []uint32
		for i := 0; i+1 < len(prog); i += 2 {
			op, arg := prog[i]%4, prog[i+1]
			p := pair{uint32(arg % 16), uint32(arg)}
			switch op {
			case 0:
				if err := x.Insert(p.h, p.slot); err != nil {
					t.Fatal(err)
				}
				model[p]++
			case 1:
				if x.Delete(p.h, p.slot) != (model[p] > 0) {
					t.Fatalf("Delete(%v) disagrees with the model (%d entries)", p, model[p])
				}
				if model[p] > 0 {
					if model[p]--; model[p] == 0 {
						delete(model, p)
					}
				}
			case 2:
				i, r, err := s.Alloc()
				if err != nil {
					t.Fatal(err)
				}
				for j := uint32(0); j < i; j++ {
					if !s.InUse(j) {
						t.Fatalf("Alloc gave slot %d with slot %d free", i, j)
					}
				}
				r.key = uint64(i) + 1
				slots = append(slots, i)
			case 3:
				if len(slots) > 0 {
					k := int(arg) % len(slots)
					s.Free(slots[k])
					slots[k] = slots[len(slots)-1]
					slots = slots[:len(slots)-1]
				}
				if arg%5 == 0 {
					s.Trim()
				}
			}
			checkIndex(t, &x, model)
		}
		for _, i := range slots {
			if !s.InUse(i) || s.At(i).key != uint64(i)+1 {
				t.Fatalf("slot %d lost its record", i)
			}
		}
		if s.Len() != len(slots) {
			t.Fatalf("Len %d, %d slots allocated", s.Len(), len(slots))
		}
	})
}
