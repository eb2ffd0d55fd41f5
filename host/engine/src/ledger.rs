//! The books' vocabulary: the accounts of the journal, the kinds of event that move money, the postings of a sale
//! and of its reversal, and a buyer's funds.
//!
//! Double entry in integer cents: an event is a set of postings that sum to zero, and a store appends them to its
//! journal in the same atomic step as what caused them (a sale's in the sale's own step) and never changes them; a
//! correction is a new event. An amount is signed from the account holder's side: positive is a credit (what the
//! exchange owes the holder, or what the holder has to spend), negative a debit.
//!
//! | account | its balance |
//! |---|---|
//! | `buyer:<id>` | the buyer's funds: payments in, less purchases (negative: spent on credit) |
//! | `publisher:<id>` | what the exchange owes the publisher: payouts earned, less payouts paid |
//! | `exchange:margin` | the exchange's share of every sale |
//! | `exchange:cash` | minus the money the exchange holds: a payment in debits it, a payout credits it |
//! | `exchange:adjustments` | minus the credit the operator granted (or plus what it took back) |

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An account of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Account {
    /// A buyer's funds.
    Buyer(String),
    /// What the exchange owes a publisher.
    Publisher(String),
    /// The exchange's margin.
    Margin,
    /// The counter-account of money in and out of the exchange.
    Cash,
    /// The counter-account of the operator's credit adjustments.
    Adjustments,
}

impl Account {
    /// The account of buyer `id`.
    pub fn buyer(id: &str) -> Self {
        Account::Buyer(id.to_owned())
    }

    /// The account of publisher `id`.
    pub fn publisher(id: &str) -> Self {
        Account::Publisher(id.to_owned())
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::Buyer(id) => write!(f, "buyer:{id}"),
            Account::Publisher(id) => write!(f, "publisher:{id}"),
            Account::Margin => f.write_str("exchange:margin"),
            Account::Cash => f.write_str("exchange:cash"),
            Account::Adjustments => f.write_str("exchange:adjustments"),
        }
    }
}

/// Why a text is not an account name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an account: one of buyer:<id>, publisher:<id>, exchange:margin, exchange:cash, exchange:adjustments"
)]
pub struct UnknownAccount(pub String);

impl FromStr for Account {
    type Err = UnknownAccount;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownAccount(text.to_owned());
        match text.split_once(':').ok_or_else(unknown)? {
            ("buyer", id) if !id.is_empty() => Ok(Account::Buyer(id.to_owned())),
            ("publisher", id) if !id.is_empty() => Ok(Account::Publisher(id.to_owned())),
            ("exchange", "margin") => Ok(Account::Margin),
            ("exchange", "cash") => Ok(Account::Cash),
            ("exchange", "adjustments") => Ok(Account::Adjustments),
            _ => Err(unknown()),
        }
    }
}

impl TryFrom<String> for Account {
    type Error = UnknownAccount;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Account> for String {
    fn from(account: Account) -> Self {
        account.to_string()
    }
}

/// What moved money.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum EventKind {
    /// A sale: the buyer pays its price, the publisher earns its payout, the exchange its margin.
    Sale,
    /// An approved return: the sale's postings reversed.
    Return,
    /// Money received from a buyer (a prepayment or a paid invoice).
    Payment,
    /// A credit (or debit) the operator grants a buyer, with a memo saying why.
    Adjustment,
    /// Money paid out to a publisher.
    Payout,
    /// The operator's reversal of an earlier payment, adjustment or payout recorded in error.
    Reversal,
}

impl EventKind {
    /// The snake_case name of the kind.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One line of an event: an amount credited (positive) or debited (negative) to an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Posting {
    #[schema(value_type = String, example = "buyer:acme")]
    pub account: Account,
    /// Cents: a credit when positive, a debit when negative; never zero.
    pub amount_cents: i64,
}

/// One event of the journal, as a store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LedgerEvent {
    /// The store's id of the event (increasing in journal order).
    pub event_id: u64,
    pub kind: EventKind,
    pub at_unix_ms: i64,
    /// Who caused it: the publisher whose lead sold, the buyer who returned it, the operator who recorded a payment.
    pub principal_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_id: Option<u64>,
    /// The event a reversal or a return undoes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverses_event_id: Option<u64>,
    /// The caller's reference (a bank transfer's id): an event of one kind is recorded once per reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    /// Its postings, by account name; they sum to zero.
    pub postings: Vec<Posting>,
}

/// An event about to be appended to the journal: a [`LedgerEvent`] before the store gives it its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub kind: EventKind,
    pub at_unix_ms: i64,
    pub principal_id: String,
    pub lead_id: Option<String>,
    pub sale_id: Option<u64>,
    pub reverses_event_id: Option<u64>,
    pub reference: Option<String>,
    pub memo: Option<String>,
    pub postings: Vec<Posting>,
}

impl NewEvent {
    /// An event of `kind` with `postings`, caused by `principal_id` at `at_unix_ms`, naming nothing else.
    pub fn new(kind: EventKind, principal_id: &str, at_unix_ms: i64, postings: Vec<Posting>) -> Self {
        NewEvent {
            kind,
            at_unix_ms,
            principal_id: principal_id.to_owned(),
            lead_id: None,
            sale_id: None,
            reverses_event_id: None,
            reference: None,
            memo: None,
            postings,
        }
    }

    /// The postings of sale `sale_id` of `lead_id` (see [`sale_postings`]), caused by the publisher whose lead sold.
    pub fn sale(sale_id: u64, lead_id: &str, publisher_id: &str, at_unix_ms: i64, postings: Vec<Posting>) -> Self {
        NewEvent {
            lead_id: Some(lead_id.to_owned()),
            sale_id: Some(sale_id),
            ..NewEvent::new(EventKind::Sale, publisher_id, at_unix_ms, postings)
        }
    }

    /// The event as stored under `event_id`, its postings in the order stores read them back: by account name.
    pub fn stored(self, event_id: u64) -> LedgerEvent {
        let NewEvent {
            kind,
            at_unix_ms,
            principal_id,
            lead_id,
            sale_id,
            reverses_event_id,
            reference,
            memo,
            mut postings,
        } = self;
        postings.sort_by_cached_key(|p| p.account.to_string());
        LedgerEvent {
            event_id,
            kind,
            at_unix_ms,
            principal_id,
            lead_id,
            sale_id,
            reverses_event_id,
            reference,
            memo,
            postings,
        }
    }
}

/// What a publisher earns of a sale at `price_cents` with margin `margin_bps`: the price less the exchange's
/// `price × margin_bps / 10 000` (rounded down, so the exchange never takes more than its margin).
pub fn payout_cents(price_cents: u32, margin_bps: u32) -> u32 {
    let margin = (u64::from(price_cents) * u64::from(margin_bps.min(10_000)) / 10_000) as u32;
    price_cents - margin
}

/// The postings of a sale at `price_cents` of which the publisher earns `payout_cents` (at most the price): the
/// buyer is debited the price, the publisher credited its payout and the exchange its margin. Zero lines are left out,
/// so a free lead posts nothing.
pub fn sale_postings(buyer_id: &str, publisher_id: &str, price_cents: u32, payout_cents: u32) -> Vec<Posting> {
    let payout = payout_cents.min(price_cents);
    let lines = [
        (Account::buyer(buyer_id), -i64::from(price_cents)),
        (Account::publisher(publisher_id), i64::from(payout)),
        (Account::Margin, i64::from(price_cents - payout)),
    ];
    lines
        .into_iter()
        .filter(|(_, amount)| *amount != 0)
        .map(|(account, amount_cents)| Posting { account, amount_cents })
        .collect()
}

/// The postings that undo `postings`.
pub fn reversed(postings: &[Posting]) -> Vec<Posting> {
    postings.iter().map(|p| Posting { account: p.account.clone(), amount_cents: -p.amount_cents }).collect()
}

/// Whether `postings` make an event: at least two lines, none zero, each account once, summing to zero.
pub fn balanced(postings: &[Posting]) -> bool {
    let sum: i128 = postings.iter().map(|p| i128::from(p.amount_cents)).sum();
    let accounts: std::collections::HashSet<&Account> = postings.iter().map(|p| &p.account).collect();
    postings.len() >= 2 && accounts.len() == postings.len() && sum == 0 && postings.iter().all(|p| p.amount_cents != 0)
}

/// A buyer's funds as the journal and its pending sales have them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Funds {
    /// The balance of `buyer:<id>`: payments and credits less purchases (negative: spent on credit).
    pub balance_cents: i64,
    /// What its pending sales and standing quotes hold: spent once they sell, given back otherwise.
    pub held_cents: u64,
}

impl Funds {
    /// What the buyer may still spend under `credit_limit_cents`: balance + credit − held (negative when a sale
    /// confirmed at a higher price took it past its limit).
    pub fn available_cents(&self, credit_limit_cents: u64) -> i64 {
        let available = i128::from(self.balance_cents) + i128::from(credit_limit_cents) - i128::from(self.held_cents);
        available.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// Whether a sale at `price_cents` fits under `credit_limit_cents`.
    pub fn covers(&self, credit_limit_cents: u64, price_cents: u32) -> bool {
        self.available_cents(credit_limit_cents) >= i64::from(price_cents)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_read_back_as_they_are_written() {
        for account in [Account::buyer("acme"), Account::publisher("p:1"), Account::Margin, Account::Cash] {
            assert_eq!(account.to_string().parse::<Account>(), Ok(account.clone()));
            assert_eq!(serde_json::to_value(&account).unwrap(), serde_json::json!(account.to_string()));
        }
        for bad in ["buyer:", "exchange:fees", "acme", ""] {
            assert!(bad.parse::<Account>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_sale_debits_its_buyer_and_credits_payout_and_margin_summing_to_zero() {
        let postings = sale_postings("b1", "p1", 2_600, payout_cents(2_600, 1_500));
        assert_eq!(
            postings,
            vec![
                Posting { account: Account::buyer("b1"), amount_cents: -2_600 },
                Posting { account: Account::publisher("p1"), amount_cents: 2_210 },
                Posting { account: Account::Margin, amount_cents: 390 },
            ]
        );
        assert!(balanced(&postings));
        assert!(balanced(&reversed(&postings)));
        // No margin: two lines; a free lead: none.
        assert_eq!(sale_postings("b1", "p1", 100, 100).len(), 2);
        assert!(sale_postings("b1", "p1", 0, 0).is_empty());
        // A payout above the price is cut to the price.
        assert!(balanced(&sale_postings("b1", "p1", 100, 500)));
    }

    #[test]
    fn unbalanced_or_degenerate_postings_are_not_an_event() {
        let line = |account: Account, amount_cents| Posting { account, amount_cents };
        assert!(!balanced(&[line(Account::Cash, 5), line(Account::buyer("b"), -4)]));
        assert!(!balanced(&[line(Account::Cash, 0), line(Account::buyer("b"), 0)]));
        assert!(!balanced(&[line(Account::Cash, 5), line(Account::Cash, -5)]));
        assert!(!balanced(&[]));
    }

    #[test]
    fn available_funds_are_balance_plus_credit_less_what_is_held() {
        let funds = Funds { balance_cents: 1_000, held_cents: 400 };
        assert_eq!(funds.available_cents(500), 1_100);
        assert!(funds.covers(500, 1_100));
        assert!(!funds.covers(500, 1_101));
        assert_eq!(Funds { balance_cents: -900, held_cents: 200 }.available_cents(1_000), -100);
    }
}
