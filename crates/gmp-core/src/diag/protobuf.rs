//! A protocol-buffers writer for the few messages of pprof's
//! `profile.proto` (docs/design.md says why it is written by hand):
//! varints, length-delimited fields and packed repeated integers.

/// A message being written.
#[derive(Default)]
pub(crate) struct Message {
    buf: Vec<u8>,
}

/// Wire types.
const VARINT: u8 = 0;
const LEN: u8 = 2;

impl Message {
    pub(crate) fn new() -> Message {
        Message::default()
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }

    /// A `uint64`/`int64` field (two's complement, as proto3 encodes
    /// `int64`); zero is the default and is left out.
    pub(crate) fn uint(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.key(field, VARINT);
            self.varint(v);
        }
    }

    pub(crate) fn int(&mut self, field: u32, v: i64) {
        self.uint(field, v as u64);
    }

    /// A `string` or `bytes` field, written even when empty (repeated
    /// strings such as the string table need their empty entries).
    pub(crate) fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, LEN);
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    /// An embedded message.
    pub(crate) fn message(&mut self, field: u32, f: impl FnOnce(&mut Message)) {
        let mut inner = Message::new();
        f(&mut inner);
        self.bytes(field, &inner.buf);
    }

    /// A packed `repeated uint64`/`int64` field.
    pub(crate) fn packed(&mut self, field: u32, vs: impl IntoIterator<Item = u64>) {
        let mut inner = Message::new();
        for v in vs {
            inner.varint(v);
        }
        if !inner.buf.is_empty() {
            self.bytes(field, &inner.buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Message;

    #[test]
    fn encodes_like_the_protobuf_spec_examples() {
        // The encoding guide's examples: field 1 = 150 is 08 96 01;
        // field 2 = "testing" is 12 07 74 65 73 74 69 6e 67.
        let mut m = Message::new();
        m.uint(1, 150);
        m.bytes(2, b"testing");
        assert_eq!(
            m.into_bytes(),
            [0x08, 0x96, 0x01, 0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']
        );
        // Packed repeated field 4 = [3, 270, 86942]: 22 06 03 8E 02 9E A7 05.
        let mut m = Message::new();
        m.packed(4, [3, 270, 86942]);
        assert_eq!(
            m.into_bytes(),
            [0x22, 0x06, 0x03, 0x8E, 0x02, 0x9E, 0xA7, 0x05]
        );
        // Negative int64: ten bytes; zero: nothing.
        let mut m = Message::new();
        m.int(1, -1);
        m.uint(2, 0);
        let b = m.into_bytes();
        assert_eq!(b.len(), 11);
        assert_eq!(b[10], 0x01);
    }
}
