//! Bounds on text that plugins and buyers write into what the exchange stores and shows (traces, outcomes, error
//! answers): every such string is cut to [`MAX_STORED_TEXT`] bytes, and one written by a party that saw the full lead
//! (a redactor, a buyer answering a post) is kept only if the PII guard finds none of the lead's PII in it.

use super::pii::PiiGuard;

/// The most bytes of one plugin- or buyer-supplied string kept in a trace or shown in an answer (reject messages,
/// refusal reasons, error texts, log lines). Longer ones are cut at a character boundary and marked.
pub const MAX_STORED_TEXT: usize = 256;

/// How many of a plugin's log lines of one call are kept in a trace, each cut to [`MAX_TRACE_LOG_LINE`] bytes: at most
/// 4 KiB of one campaign's logs per lead.
pub const MAX_TRACE_LOG_LINES: usize = 4;

/// The most bytes of one log line kept in a trace.
pub const MAX_TRACE_LOG_LINE: usize = 1024;

/// `text` cut to `max` bytes at a character boundary, with `…(N bytes)` saying how long it was.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…({} bytes)", &text[..end], text.len())
}

/// `text` as it may be stored: bounded, and withheld (naming what it held) when it holds the lead's PII.
pub fn stored(guard: &PiiGuard, text: String) -> String {
    let kinds = guard.find_in(&text);
    if kinds.is_empty() {
        return bounded(&text, MAX_STORED_TEXT);
    }
    let named: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    format!("[withheld: the text held the consumer's {}]", named.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_a_character_boundary_and_says_how_long_it_was() {
        let text = "é".repeat(300);
        let cut = bounded(&text, 255);
        assert!(cut.starts_with(&"é".repeat(127)) && cut.ends_with("…(600 bytes)"), "{cut}");
        assert_eq!(bounded("short", 256), "short");
    }

    #[test]
    fn text_holding_the_leads_pii_is_withheld_naming_the_kind() {
        let lead = pingpost_model::Lead {
            consumer: pingpost_model::Consumer {
                first_name: "Maria".into(),
                last_name: "Delgado".into(),
                phone: "+13055550142".into(),
                email: "maria@example.com".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let guard = PiiGuard::for_lead(&lead, 58);
        let kept = stored(&guard, "refused: 305 555 0142 is not a mobile".into());
        assert!(kept.starts_with("[withheld: the text held the consumer's phone") && !kept.contains("0142"), "{kept}");
        assert_eq!(stored(&guard, "refused: outside our area".into()), "refused: outside our area");
    }
}
