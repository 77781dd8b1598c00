//! The check behind the `pg_wire` fuzz target and the property tests.

use std::fmt::Write as _;

use bytes::BytesMut;

use crate::backend::BackendMessage;
use crate::framer::{FrameRef, Framer};
use crate::frontend::FrontendMessage;
use crate::tag::Direction;

/// Frames and decodes arbitrary bytes, and panics only when the codec breaks
/// a promise. The first byte chooses the direction (bit 0), whether a
/// client's stream starts after the startup phase (bit 1), and the size of
/// the chunks the stream arrives in (bits 2 to 7); the rest is the stream.
///
/// The promises: framing a whole buffer and framing it as it trickles in
/// give the same messages and the same error; every message that decodes
/// re-encodes to exactly the bytes received and decodes again to an equal
/// message; every view iterates as many items as it counts; formatting never
/// panics. A panic anywhere in the codec fails the check too.
pub fn fuzz_wire(data: &[u8]) {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let direction = if control & 1 == 0 {
        Direction::Frontend
    } else {
        Direction::Backend
    };
    let mut framer = framer(direction, control & 2 != 0);

    let mut whole = Vec::new();
    let mut whole_error = None;
    for item in framer.clone().frames(stream) {
        match item {
            Ok(frame) => {
                check_frame(direction, frame);
                whole.push(frame.as_bytes());
            }
            Err(e) => whole_error = Some(e),
        }
    }

    let chunk = usize::from(control >> 2).max(1);
    let mut buf = BytesMut::new();
    let mut trickled = Vec::new();
    let mut trickle_error = None;
    'chunks: for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match framer.next(&mut buf) {
                Ok(Some(frame)) => trickled.push(frame),
                Ok(None) => break,
                Err(e) => {
                    trickle_error = Some(e);
                    break 'chunks;
                }
            }
        }
    }
    if trickle_error.is_none() {
        trickle_error = framer.finish(&buf).err();
    }
    let trickled: Vec<&[u8]> = trickled.iter().map(|f| f.as_bytes()).collect();
    assert_eq!(trickled, whole, "framing in chunks of {chunk} differs");
    assert_eq!(
        trickle_error, whole_error,
        "framing in chunks of {chunk} differs"
    );
}

fn framer(direction: Direction, tagged: bool) -> Framer {
    match direction {
        Direction::Frontend => {
            let mut f = Framer::frontend();
            if tagged {
                f.skip_startup();
            }
            f
        }
        Direction::Backend => Framer::backend(),
    }
}

fn check_frame(direction: Direction, frame: FrameRef<'_>) {
    let mut out = BytesMut::new();
    let mut text = String::new();
    match direction {
        Direction::Frontend => {
            let Ok(msg) = frame.frontend() else { return };
            exercise_frontend(&msg);
            let _ = write!(text, "{msg:?}");
            msg.encode(&mut out).expect("a decoded message re-encodes");
            assert_eq!(&out[..], frame.as_bytes(), "re-encoding changed {msg:?}");
            let mut again = framer(direction, frame.tag().is_some());
            let reframed = again.next_ref(&out).expect("re-frames").expect("whole");
            assert_eq!(reframed.frontend().as_ref(), Ok(&msg));
        }
        Direction::Backend => {
            let Ok(msg) = frame.backend() else { return };
            exercise_backend(&msg);
            let _ = write!(text, "{msg:?}");
            msg.encode(&mut out).expect("a decoded message re-encodes");
            assert_eq!(&out[..], frame.as_bytes(), "re-encoding changed {msg:?}");
            let reframed = Framer::backend()
                .next_ref(&out)
                .expect("re-frames")
                .expect("whole");
            assert_eq!(reframed.backend().as_ref(), Ok(&msg));
        }
    }
}

fn exercise_frontend(msg: &FrontendMessage<'_>) {
    match msg {
        FrontendMessage::AuthResponse(a) => {
            let _ = a.sasl_initial();
        }
        FrontendMessage::Bind(b) => {
            assert_eq!(b.params.iter().count(), b.params.len());
            assert_eq!(b.param_formats.iter().count(), b.param_formats.len());
            assert_eq!(b.result_formats.iter().count(), b.result_formats.len());
            for i in 0..b.params.len() {
                let _ = b.param_formats.resolve(i, b.params.len());
            }
        }
        FrontendMessage::FunctionCall(f) => {
            assert_eq!(f.args.iter().count(), f.args.len());
        }
        FrontendMessage::Parse(p) => {
            assert_eq!(p.param_types.iter().count(), p.param_types.len());
        }
        FrontendMessage::Startup(s) => {
            assert_eq!(s.params.iter().count(), s.params.len());
            let _ = (s.user(), s.database(), s.application_name());
        }
        _ => {}
    }
}

fn exercise_backend(msg: &BackendMessage<'_>) {
    match msg {
        BackendMessage::Authentication(crate::Authentication::Sasl(m)) => {
            let _ = m.without_channel_binding().count();
        }
        BackendMessage::CommandComplete(c) => {
            let _ = (c.rows(), c.command());
        }
        BackendMessage::DataRow(d) => {
            assert_eq!(d.columns.iter().count(), d.columns.len());
        }
        BackendMessage::ErrorResponse(d) | BackendMessage::NoticeResponse(d) => {
            let _ = (d.severity(), d.sqlstate(), d.message(), d.position());
        }
        BackendMessage::NegotiateProtocolVersion(n) => {
            assert_eq!(n.unrecognized.iter().count(), n.unrecognized.len());
        }
        BackendMessage::ParameterDescription(p) => {
            assert_eq!(p.types.iter().count(), p.types.len());
        }
        BackendMessage::RowDescription(r) => {
            assert_eq!(r.fields().count(), r.len());
        }
        _ => {}
    }
}
