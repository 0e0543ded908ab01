package security

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// POSIX ACLs as extended attributes (linux/posix_acl_xattr.h): a version
// word, then {tag u16, perm u16, id u32} entries in tag and id order.
const (
	aclXattrVersion = 2
	aclUserObj      = 0x01
	aclUser         = 0x02
	aclGroupObj     = 0x04
	aclGroup        = 0x08
	aclMask         = 0x10
	aclOther        = 0x20
	aclUndefinedID  = 0xffffffff

	aclAccess  = "system.posix_acl_access"
	aclDefault = "system.posix_acl_default"
)

// encodeACL turns a short-form ACL ("u::rw-,u:65534:---,g::r--,m::r--,o::r--",
// entries in canonical order) into its extended attribute value.
func encodeACL(spec string) ([]byte, error) {
	b := binary.LittleEndian.AppendUint32(nil, aclXattrVersion)
	for _, ent := range strings.Split(spec, ",") {
		f := strings.Split(ent, ":")
		if len(f) != 3 || len(f[2]) != 3 {
			return nil, fmt.Errorf("acl entry %q", ent)
		}
		var tag uint16
		id := uint32(aclUndefinedID)
		switch f[0] {
		case "u":
			tag = aclUserObj
		case "g":
			tag = aclGroupObj
		case "m":
			tag = aclMask
		case "o":
			tag = aclOther
		default:
			return nil, fmt.Errorf("acl entry %q", ent)
		}
		if f[1] != "" {
			n, err := strconv.ParseUint(f[1], 10, 32)
			if err != nil || (tag != aclUserObj && tag != aclGroupObj) {
				return nil, fmt.Errorf("acl entry %q", ent)
			}
			tag <<= 1 // aclUser, aclGroup
			id = uint32(n)
		}
		var perm uint16
		for i, c := range f[2] {
			if c != '-' {
				perm |= 4 >> i
			}
		}
		b = binary.LittleEndian.AppendUint16(b, tag)
		b = binary.LittleEndian.AppendUint16(b, perm)
		b = binary.LittleEndian.AppendUint32(b, id)
	}
	return b, nil
}

// decodeACL is the inverse of encodeACL, for reports.
func decodeACL(b []byte) string {
	if len(b) < 4 || (len(b)-4)%8 != 0 {
		return fmt.Sprintf("bad acl %x", b)
	}
	var parts []string
	for b = b[4:]; len(b) > 0; b = b[8:] {
		tag, perm, id := binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint16(b[2:]), binary.LittleEndian.Uint32(b[4:])
		name := map[uint16]string{aclUserObj: "u", aclUser: "u", aclGroupObj: "g", aclGroup: "g", aclMask: "m", aclOther: "o"}[tag]
		q := ""
		if tag == aclUser || tag == aclGroup {
			q = strconv.FormatUint(uint64(id), 10)
		}
		rwx := []byte("---")
		for i := range 3 {
			if perm&(4>>i) != 0 {
				rwx[i] = "rwx"[i]
			}
		}
		parts = append(parts, name+":"+q+":"+string(rwx))
	}
	return strings.Join(parts, ",")
}

// setACL sets the access or default ACL of path from its short form.
func setACL(path, name, spec string) error {
	v, err := encodeACL(spec)
	if err != nil {
		return err
	}
	return unix.Lsetxattr(path, name, v, 0)
}

// aclLine summarizes the ACLs of path ("" without any).
func aclLine(path string) string {
	var s string
	for _, name := range []string{aclAccess, aclDefault} {
		buf := make([]byte, 1024)
		n, err := unix.Lgetxattr(path, name, buf)
		if err == nil {
			s += fmt.Sprintf(" %s=%s", name[len("system.posix_acl_"):], decodeACL(buf[:n]))
		}
	}
	return s
}
