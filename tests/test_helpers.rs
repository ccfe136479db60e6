//! The suite's own comparison helpers fail on NaN, infinity and a length mismatch: a helper
//! blind to them would let a kernel that returns NaN pass every test.

mod common;

use common::numeric::{assert_close, max_abs};
use common::{max_diff, max_diff64};

#[test]
fn max_diff_is_infinite_on_nan_or_infinity() {
    assert_eq!(max_diff(&[1.0, 2.0], &[1.0, 2.5]), 0.5);
    assert_eq!(max_diff(&[f32::NAN, 2.0], &[1.0, 2.0]), f64::INFINITY);
    assert_eq!(max_diff(&[1.0, 2.0], &[1.0, f64::NAN]), f64::INFINITY);
    assert_eq!(
        max_diff64(&[f64::INFINITY], &[f64::INFINITY]),
        f64::INFINITY
    );
    assert!(max_abs(&[1.0, f64::NAN]).is_nan());
}

#[test]
#[should_panic(expected = "differ in length")]
fn max_diff_fails_on_a_length_mismatch() {
    max_diff(&[1.0], &[1.0, 2.0]);
}

#[test]
#[should_panic]
fn assert_close_fails_on_nan() {
    assert_close("nan", &[f32::NAN], &[0.0], 1.0);
}

#[test]
#[should_panic]
fn assert_close_fails_on_a_length_mismatch() {
    assert_close("short", &[0.0], &[0.0, 0.0], 1.0);
}
