//! Quantities for validation: the crate's [`crate::quantity::Quantity`] (exact nano-units,
//! upstream's canonical printing), plus the one predicate validators need.

pub use crate::quantity::Quantity as Qty;

/// Sign helpers upstream's validators use (`Cmp(Quantity{}) < 0`).
pub trait QtyExt {
    fn is_negative(&self) -> bool;
}

impl QtyExt for Qty {
    fn is_negative(&self) -> bool {
        self.sign() < 0
    }
}
