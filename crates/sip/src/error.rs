//! The crate's error type.

/// Why bytes are not a SIP message, or a header value is not what its name promises.
///
/// Network input that fails here is not an error of an engine: the caller turns it into a
/// `400` (see [`triage_datagram`](crate::triage_datagram)) or a drop, and counts it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but line breaks (a keep-alive) or no bytes at all.
    #[error("empty message")]
    Empty,
    /// The message is larger than [`Limits::max_message_size`](crate::Limits).
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Size seen (for a stream: at least this much).
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A line of the header section is longer than [`Limits::max_line_length`](crate::Limits).
    #[error("a header line exceeds {limit} bytes")]
    LineTooLong {
        /// The configured limit.
        limit: usize,
    },
    /// More header fields than [`Limits::max_headers`](crate::Limits).
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The configured limit.
        limit: usize,
    },
    /// The header section has no end (no empty line).
    #[error("the header section does not end with an empty line")]
    UnterminatedHead,
    /// The Request-Line or Status-Line is malformed (RFC 3261 7.1, 7.2).
    #[error("invalid start line: {0}")]
    StartLine(&'static str),
    /// A header line has no colon or a name that is not a token (RFC 3261 7.3.1).
    #[error("invalid header line: {0}")]
    HeaderLine(&'static str),
    /// A header field value does not match its grammar.
    #[error("invalid {name} header: {reason}")]
    InvalidHeader {
        /// Header name in its canonical form.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A mandatory header field is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A header field that may appear once appears several times (RFC 3261 7.3.1).
    #[error("several {0} headers where one is allowed")]
    MultipleHeaders(&'static str),
    /// Content-Length announces more octets than the datagram holds (RFC 3261 18.3).
    #[error("Content-Length {declared} exceeds the {available} body bytes present")]
    BodyTruncated {
        /// The announced length.
        declared: usize,
        /// What is there.
        available: usize,
    },
    /// A URI does not match RFC 3261 19.1 (or the generic URI syntax).
    #[error("invalid URI: {0}")]
    InvalidUri(&'static str),
    /// A value given to a builder or setter is not valid there.
    #[error("invalid value: {0}")]
    InvalidValue(&'static str),
}

impl ParseError {
    /// Builds an [`ParseError::InvalidHeader`].
    pub(crate) fn header(name: &str, reason: &'static str) -> Self {
        ParseError::InvalidHeader {
            name: name.to_string(),
            reason,
        }
    }
}
