package schema

import (
	"fmt"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// protoReadable lists why messages written with writer's file may not
// parse as reader's, from the protobuf wire rules (as Confluent's
// Protobuf compatibility checker applies them):
//   - the package may not change, and every message the writer defines
//     must still exist (a producer may send any of them);
//   - a field may be removed or renamed, but its number may not come back
//     with an incompatible type: scalars are interchangeable only within a
//     wire group ({int32,uint32,int64,uint64,bool}, {sint32,sint64},
//     {fixed32,sfixed32}, {fixed64,sfixed64}, {string,bytes}); message and
//     enum fields must keep their type's full name; singular and repeated
//     do not mix;
//   - proto2 required fields may be neither added nor removed;
//   - a field may not move into an oneof that already existed, and several
//     fields may not move into one new oneof.
func protoReadable(reader, writer protoreflect.FileDescriptor) []string {
	var out []string
	fail := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if reader.Package() != writer.Package() {
		fail("package changed from '%s' to '%s'", writer.Package(), reader.Package())
		return out
	}
	rmsgs := map[protoreflect.FullName]protoreflect.MessageDescriptor{}
	walkMessages(reader.Messages(), func(m protoreflect.MessageDescriptor) { rmsgs[m.FullName()] = m })
	walkMessages(writer.Messages(), func(wm protoreflect.MessageDescriptor) {
		rm, ok := rmsgs[wm.FullName()]
		if !ok {
			fail("message '%s' removed", wm.FullName())
			return
		}
		out = append(out, protoMessageReadable(rm, wm)...)
	})
	return out
}

func walkMessages(ms protoreflect.MessageDescriptors, fn func(protoreflect.MessageDescriptor)) {
	for i := range ms.Len() {
		m := ms.Get(i)
		if m.IsMapEntry() {
			continue
		}
		fn(m)
		walkMessages(m.Messages(), fn)
	}
}

func protoMessageReadable(r, w protoreflect.MessageDescriptor) []string {
	var out []string
	fail := func(format string, args ...any) {
		out = append(out, fmt.Sprintf("message '%s': ", r.FullName())+fmt.Sprintf(format, args...))
	}
	// newOneofs counts writer fields moved into each reader oneof that the
	// writer did not have.
	newOneofs := map[protoreflect.Name]int{}
	wfields := w.Fields()
	for i := range wfields.Len() {
		wf := wfields.Get(i)
		rf := r.Fields().ByNumber(wf.Number())
		if rf == nil {
			if wf.Cardinality() == protoreflect.Required {
				fail("required field %d '%s' removed", wf.Number(), wf.Name())
			}
			continue
		}
		if msg := protoFieldTypeChange(rf, wf); msg != "" {
			fail("field %d: %s", wf.Number(), msg)
		}
		if (rf.Cardinality() == protoreflect.Required) != (wf.Cardinality() == protoreflect.Required) {
			fail("field %d '%s' changed between required and optional", wf.Number(), rf.Name())
		}
		ro, wo := realOneof(rf), realOneof(wf)
		if ro != nil && wo == nil {
			if w.Oneofs().ByName(ro.Name()) != nil {
				fail("field %d '%s' moved into the existing oneof '%s'", wf.Number(), rf.Name(), ro.Name())
			} else {
				newOneofs[ro.Name()]++
			}
		}
	}
	for name, n := range newOneofs {
		if n > 1 {
			fail("%d existing fields moved into the new oneof '%s'", n, name)
		}
	}
	rfields := r.Fields()
	for i := range rfields.Len() {
		rf := rfields.Get(i)
		if wfields.ByNumber(rf.Number()) != nil {
			continue
		}
		if rf.Cardinality() == protoreflect.Required {
			fail("required field %d '%s' added", rf.Number(), rf.Name())
		}
	}
	return out
}

func realOneof(f protoreflect.FieldDescriptor) protoreflect.OneofDescriptor {
	if o := f.ContainingOneof(); o != nil && !o.IsSynthetic() {
		return o
	}
	return nil
}

// protoFieldTypeChange describes an incompatible change of one field's
// type, or returns "".
func protoFieldTypeChange(r, w protoreflect.FieldDescriptor) string {
	if r.IsMap() != w.IsMap() || r.IsList() != w.IsList() {
		return fmt.Sprintf("'%s' changed between singular, repeated and map", r.Name())
	}
	if r.IsMap() {
		if m := protoFieldTypeChange(r.MapKey(), w.MapKey()); m != "" {
			return "map key: " + m
		}
		if m := protoFieldTypeChange(r.MapValue(), w.MapValue()); m != "" {
			return "map value: " + m
		}
		return ""
	}
	rk, wk := r.Kind(), w.Kind()
	switch {
	case rk == wk && (rk == protoreflect.MessageKind || rk == protoreflect.GroupKind):
		if r.Message().FullName() != w.Message().FullName() {
			return fmt.Sprintf("'%s' changed type from %s to %s", r.Name(), w.Message().FullName(), r.Message().FullName())
		}
	case rk == wk && rk == protoreflect.EnumKind:
		if r.Enum().FullName() != w.Enum().FullName() {
			return fmt.Sprintf("'%s' changed type from %s to %s", r.Name(), w.Enum().FullName(), r.Enum().FullName())
		}
	case rk == wk:
	case scalarGroup(rk) != 0 && scalarGroup(rk) == scalarGroup(wk):
	default:
		return fmt.Sprintf("'%s' changed kind from %s to %s", r.Name(), kindName(w), kindName(r))
	}
	return ""
}

func kindName(f protoreflect.FieldDescriptor) string {
	switch f.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return string(f.Message().FullName())
	case protoreflect.EnumKind:
		return string(f.Enum().FullName())
	}
	return f.Kind().String()
}

// scalarGroup numbers the sets of scalar kinds that share a wire encoding
// a reader of one kind parses as another; 0 for kinds in no set.
func scalarGroup(k protoreflect.Kind) int {
	switch k {
	case protoreflect.Int32Kind, protoreflect.Uint32Kind, protoreflect.Int64Kind, protoreflect.Uint64Kind, protoreflect.BoolKind:
		return 1
	case protoreflect.Sint32Kind, protoreflect.Sint64Kind:
		return 2
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
		return 3
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
		return 4
	case protoreflect.StringKind, protoreflect.BytesKind:
		return 5
	}
	return 0
}

// protoReserved lists the fields of newer that use a number (or name)
// older reserved: not a wire problem between the two, but the reason the
// number was reserved is that some still older schema used it otherwise.
func protoReserved(newer, older protoreflect.FileDescriptor) []string {
	var out []string
	omsgs := map[protoreflect.FullName]protoreflect.MessageDescriptor{}
	walkMessages(older.Messages(), func(m protoreflect.MessageDescriptor) { omsgs[m.FullName()] = m })
	walkMessages(newer.Messages(), func(m protoreflect.MessageDescriptor) {
		om, ok := omsgs[m.FullName()]
		if !ok {
			return
		}
		fs := m.Fields()
		for i := range fs.Len() {
			f := fs.Get(i)
			if om.ReservedRanges().Has(f.Number()) {
				out = append(out, fmt.Sprintf("message '%s': field %d '%s' reuses a number the old schema reserved", m.FullName(), f.Number(), f.Name()))
			} else if om.ReservedNames().Has(f.Name()) {
				out = append(out, fmt.Sprintf("message '%s': field '%s' reuses a name the old schema reserved", m.FullName(), f.Name()))
			}
		}
	})
	return out
}
