package ringfuse

import (
	"fmt"
	"reflect"
	"strings"
)

// operations lists the optional interfaces by which the server finds a
// filesystem's operations.
var operations = []reflect.Type{
	reflect.TypeFor[Lookuper](), reflect.TypeFor[Forgetter](), reflect.TypeFor[NodeTable](),
	reflect.TypeFor[GetAttrer](), reflect.TypeFor[Statxer](), reflect.TypeFor[SetAttrer](),
	reflect.TypeFor[Readlinker](), reflect.TypeFor[Symlinker](), reflect.TypeFor[Mknoder](),
	reflect.TypeFor[Mkdirer](), reflect.TypeFor[Unlinker](), reflect.TypeFor[Rmdirer](),
	reflect.TypeFor[Renamer](), reflect.TypeFor[Linker](), reflect.TypeFor[Opener](),
	reflect.TypeFor[Reader](), reflect.TypeFor[Writer](), reflect.TypeFor[FdFiler](),
	reflect.TypeFor[StatFSer](), reflect.TypeFor[Releaser](), reflect.TypeFor[Fsyncer](),
	reflect.TypeFor[Flusher](), reflect.TypeFor[Xattrer](), reflect.TypeFor[DirOpener](),
	reflect.TypeFor[DirReader](), reflect.TypeFor[DirReleaser](), reflect.TypeFor[DirFsyncer](),
	reflect.TypeFor[Accesser](), reflect.TypeFor[Creater](), reflect.TypeFor[Allocater](),
	reflect.TypeFor[Seeker](), reflect.TypeFor[CopyFileRanger](), reflect.TypeFor[Locker](),
	reflect.TypeFor[Destroyer](),
}

// Check reports a method of fsys that is named like an operation but that
// the server would never call: its signature differs from the operation's
// interface, or a sibling method the interface also needs is missing. The
// server finds operations by interface, so such a method would otherwise
// go unnoticed and its operation answer ENOSYS. session.Mount calls Check
// and refuses to mount on error.
func Check(fsys FileSystem) error {
	return CheckMethods(fsys, operations)
}

// CheckMethods is Check for another set of operation interfaces (the node
// API checks its node types with it): for each interface in ifaces that v
// does not implement, a method of v named like one of the interface's
// methods is an error.
func CheckMethods(v any, ifaces []reflect.Type) error {
	t := reflect.TypeOf(v)
	if t == nil {
		return nil
	}
	var errs []string
	for _, it := range ifaces {
		if t.Implements(it) {
			continue
		}
		for i := range it.NumMethod() {
			want := it.Method(i)
			have, ok := t.MethodByName(want.Name)
			if !ok {
				continue
			}
			if !implementsMethod(have.Type, want.Type) {
				errs = append(errs, fmt.Sprintf("%v.%s is %s, but %v.%s needs %s", t, want.Name,
					strings.TrimPrefix(funcSig(have.Type, 1), "func"), it, want.Name, strings.TrimPrefix(funcSig(want.Type, 0), "func")))
				continue
			}
			errs = append(errs, fmt.Sprintf("%v.%s is never called: %v also needs %s", t, want.Name, it, missing(t, it)))
		}
	}
	if errs == nil {
		return nil
	}
	return fmt.Errorf("ringfuse: %s", strings.Join(errs, "; "))
}

// implementsMethod compares a method's type with receiver against an
// interface method's type without one.
func implementsMethod(have, want reflect.Type) bool {
	return funcSig(have, 1) == funcSig(want, 0)
}

// funcSig formats a func type, skipping its first skip parameters.
func funcSig(f reflect.Type, skip int) string {
	var b strings.Builder
	b.WriteString("func(")
	for i := skip; i < f.NumIn(); i++ {
		if i > skip {
			b.WriteString(", ")
		}
		if f.IsVariadic() && i == f.NumIn()-1 {
			b.WriteString("..." + f.In(i).Elem().String())
			continue
		}
		b.WriteString(f.In(i).String())
	}
	b.WriteString(")")
	switch f.NumOut() {
	case 0:
	case 1:
		b.WriteString(" " + f.Out(0).String())
	default:
		outs := make([]string, f.NumOut())
		for i := range outs {
			outs[i] = f.Out(i).String()
		}
		b.WriteString(" (" + strings.Join(outs, ", ") + ")")
	}
	return b.String()
}

// missing names the methods of it that t lacks.
func missing(t, it reflect.Type) string {
	var m []string
	for i := range it.NumMethod() {
		if _, ok := t.MethodByName(it.Method(i).Name); !ok {
			m = append(m, it.Method(i).Name)
		}
	}
	return strings.Join(m, " and ")
}
