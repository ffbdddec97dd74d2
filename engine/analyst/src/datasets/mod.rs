//! Converters from public labeled data sets to events of our contract and
//! outcomes, so the analyst toolkit can be checked on history none of us
//! wrote.

pub mod bank_marketing;
