//! Every BGV operation against plain arithmetic mod t, bit for bit; circuits that chain them;
//! scale and noise tracking; several plaintext primes under one key set.

use super::support::{setup, setup_for, Setup};
use super::*;
use crate::bfv::test_params::{secure_8192, toy};
use crate::bgv::{PublicKey, RelinKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

#[test]
fn bgv_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Ciphertext>();
    check::<Evaluator>();
    check::<PublicKey>();
    check::<RelinKey>();
    check::<crate::bgv::GaloisKeys>();
}

#[test]
fn bgv_every_primitive_matches_plain_arithmetic_mod_t() {
    let mut s = setup(toy(2048), 1);
    let a = s.random(i64::MAX / 4);
    let b = s.random(40_000);
    let ca = s.encrypt(&a);
    let cb = s.encrypt_pk(&b);
    assert_eq!(s.decrypt(&ca), s.expect(|i| i128::from(a[i])));
    assert_eq!(s.decrypt(&cb), s.expect(|i| i128::from(b[i])));
    let ev = s.ev.clone();
    let (x, y) = (|i: usize| i128::from(a[i]), |i: usize| i128::from(b[i]));
    let sq = ev.square(&cb).unwrap();
    let prod = ev.mul(&ca, &cb).unwrap();
    let cases: Vec<(&str, Ciphertext, Vec<i64>)> = vec![
        ("add", ev.add(&ca, &cb).unwrap(), s.expect(|i| x(i) + y(i))),
        ("sub", ev.sub(&ca, &cb).unwrap(), s.expect(|i| x(i) - y(i))),
        ("neg", ev.neg(&ca).unwrap(), s.expect(|i| -x(i))),
        (
            "add_constant",
            ev.add_constant(&ca, -123_456_789_012).unwrap(),
            s.expect(|i| x(i) - 123_456_789_012),
        ),
        (
            "dot",
            ev.dot(&[&ca, &cb, &ca], &[-7, 3, 1 << 40]).unwrap(),
            s.expect(|i| -7 * x(i) + 3 * y(i) + (x(i) << 40)),
        ),
        ("mul", prod.clone(), s.expect(|i| x(i) * y(i))),
        ("square", sq.clone(), s.expect(|i| y(i) * y(i))),
        (
            "square+relinearize",
            ev.relinearize(&sq, &s.rk).unwrap(),
            s.expect(|i| y(i) * y(i)),
        ),
        (
            "mul+relinearize",
            ev.relinearize(&prod, &s.rk).unwrap(),
            s.expect(|i| x(i) * y(i)),
        ),
        (
            "size-2 mod_switch",
            ev.mod_switch_to_next(&cb).unwrap(),
            s.expect(y),
        ),
        (
            "size-3 mod_switch",
            ev.mod_switch_to_next(&sq).unwrap(),
            s.expect(|i| y(i) * y(i)),
        ),
    ];
    for (name, ct, expect) in cases {
        assert_eq!(s.decrypt(&ct), expect, "{name}");
        println!("{name}: budget {}", s.budget(&ct));
    }
    for w in [
        0i64,
        1,
        -1,
        7,
        -300,
        65537 * 2 + 5,
        i64::MAX,
        i64::MIN + 1,
        i64::MIN,
    ] {
        let r = ev.mul_scalar(&ca, w).unwrap();
        assert_eq!(s.decrypt(&r), s.expect(|i| x(i) * i128::from(w)), "w={w}");
    }
    let mut acc = ca.clone();
    ev.add_assign(&mut acc, &cb).unwrap();
    assert_eq!(s.decrypt(&ev.sub(&acc, &cb).unwrap()), s.expect(x));
    // Operand checks.
    assert!(matches!(
        ev.mul(&sq, &ca),
        Err(EvalError::UnsupportedSize { size: 3, max: 2 })
    ));
    let low = ev.mod_switch_to_next(&ca).unwrap();
    assert!(matches!(
        ev.add(&ca, &low),
        Err(EvalError::LevelMismatch { .. })
    ));
    let low_b = ev.mod_switch_to_next(&cb).unwrap();
    let squared_low = ev.square(&low_b).unwrap();
    let err = ev.add(&low, &squared_low).unwrap_err();
    assert!(matches!(err, EvalError::ScaleMismatch { .. }));
    assert!(
        err.to_string()
            .contains("operands carry different scales mod t"),
        "{err}"
    );
    assert_eq!(ev.dot(&[], &[]).unwrap_err(), EvalError::Empty);
    assert!(matches!(
        ev.dot(&[&ca], &[1, 2]),
        Err(EvalError::LengthMismatch { .. })
    ));
}

#[test]
fn bgv_negative_weights_cost_their_magnitude_not_t() {
    let params = BfvParameters::builder()
        .degree(2048)
        .q_bits(&[60, 60])
        .special_bits(61)
        .plain_bits(40)
        .allow_insecure(true)
        .build()
        .unwrap();
    let mut s = setup(params, 2);
    let a = s.random(1000);
    let ca = s.encrypt(&a);
    let fresh = s.budget(&ca);
    let pos = s.budget(&s.ev.mul_scalar(&ca, 3).unwrap());
    let neg = s.budget(&s.ev.mul_scalar(&ca, -3).unwrap());
    let dot = s.ev.dot(&[&ca, &ca], &[-5, 2]).unwrap();
    println!(
        "fresh {fresh}, ×3 {pos}, ×−3 {neg}, dot(−5, 2) {}",
        s.budget(&dot)
    );
    assert_eq!(pos, neg);
    assert!(fresh - neg <= 3, "fresh {fresh}, ×−3 {neg}");
    assert!(fresh - s.budget(&dot) <= 3);
    assert_eq!(s.decrypt(&dot), s.expect(|i| -3 * i128::from(a[i])));
}

#[test]
fn bgv_one_key_set_serves_several_plaintext_primes() {
    let base = toy(2048);
    let t0 = base.plain_modulus();
    let t1 = crate::math::ntt_primes(30, 2048, 1, &[t0]).unwrap()[0];
    let t2 = crate::math::ntt_primes(20, 2048, 1, &[t0, t1]).unwrap()[0];
    let primes = [t0, t1, t2];
    let mut s = setup_for(base.clone(), &primes, 3);
    for &t in &primes {
        let params = base.with_plain_modulus(t).unwrap();
        let enc = crate::bfv::Encoder::new(&params);
        let ev = Evaluator::new(&params);
        let v: Vec<i64> = (0..2048).map(|i| (i % 201) - 100).collect();
        let pt = enc.encode(&v).unwrap();
        let by_pk = s.pk.encrypt(&pt, &mut s.rng).unwrap();
        let by_sk = crate::bgv::encrypt(&s.sk, &pt, &mut s.rng).unwrap();
        let sq = ev
            .relinearize(&ev.mul(&by_pk, &by_sk).unwrap(), &s.rk)
            .unwrap();
        let out = ev.mod_switch_to_next(&sq).unwrap();
        let got = enc
            .decode(&crate::bgv::decrypt(&s.sk, &out).unwrap())
            .unwrap();
        let want: Vec<i64> = v.iter().map(|x| x * x).collect();
        assert_eq!(got, want, "t={t}");
        println!(
            "t={t}: budget after mul+relin+switch {}",
            crate::bgv::noise_budget_bits(&s.sk, &out).unwrap()
        );
    }
    // A key set made for t0 alone refuses t1.
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let pk0 = PublicKey::new(&s.sk, &[t0], &mut rng).unwrap();
    let rk0 = RelinKey::new(&s.sk, &[t0], &mut rng).unwrap();
    let p1 = base.with_plain_modulus(t1).unwrap();
    let pt1 = crate::bfv::Encoder::new(&p1).encode(&[1, 2]).unwrap();
    assert!(matches!(
        pk0.encrypt(&pt1, &mut rng),
        Err(EvalError::PlainModulusNotCovered { .. })
    ));
    let ct1 = crate::bgv::encrypt(&s.sk, &pt1, &mut rng).unwrap();
    let ev1 = Evaluator::new(&p1);
    let err = ev1
        .relinearize(&ev1.square(&ct1).unwrap(), &rk0)
        .unwrap_err();
    assert!(err.to_string().contains("do not include t="), "{err}");
    // Bad prime lists are refused by name.
    let q0 = base.q_primes()[0];
    for (bad, why) in [
        (&[][..], "the list is empty"),
        (&[t0, t0][..], "a prime is listed twice"),
        (&[q0][..], "equals a ciphertext or special prime"),
        (&[4][..], "odd and at least 3"),
    ] {
        let err = RelinKey::new(&s.sk, bad, &mut rng).unwrap_err();
        assert!(matches!(err, EvalError::InvalidPlainPrimes { .. }));
        let text = err.to_string();
        assert!(
            text.contains("cannot serve a BGV key set") && text.contains(why),
            "{text}"
        );
    }
}

/// The δ of the division by one prime r: δ ≡ x (mod r), δ ≡ 0 (mod t), |δ| ≤ t·r/2, and the
/// result times r is x − δ modulo every remaining prime; checked coefficient by coefficient
/// with 128-bit integers on values built from known integers.
#[test]
fn bgv_division_by_the_last_prime_keeps_the_message_mod_t() {
    let params = toy(1024);
    let ring = params.ring();
    let n = 1024;
    let t = params.plain_modulus();
    let level = 2;
    let moduli: Vec<_> = ring.q()[..level].to_vec();
    let p = *ring.special();
    let tables = ring.q_tables(level);
    let p_table = &ring.key_tables()[ring.max_level()];
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let xs: Vec<i128> = (0..n)
        .map(|_| rng.gen_range(-(1i128 << 100)..(1i128 << 100)))
        .collect();
    let mut x = crate::math::RnsPoly::<crate::math::Coeff>::zero(level + 1, n);
    for (l, m) in moduli.iter().chain([&p]).enumerate() {
        for (o, &v) in x.limb_mut(l).iter_mut().zip(&xs) {
            *o = m.reduce_i128(v);
        }
    }
    let mut all_tables: Vec<&crate::math::NttTable> = tables.iter().collect();
    all_tables.push(p_table);
    let x = x.into_ntt(&all_tables);
    let inv = &ring.special_inv_mod_q()[..level];
    let out = super::mod_switch::divide_by_last(&x, None, &moduli, tables, (&p, p_table), inv, t)
        .into_coeff(tables);
    let pv = i128::from(p.value());
    let t_inv = i128::from(p.inv(t).unwrap());
    for (k, &xk) in xs.iter().enumerate() {
        let w = (xk.rem_euclid(pv) * t_inv).rem_euclid(pv);
        let w = if w > pv / 2 { w - pv } else { w };
        let delta = i128::from(t) * w;
        assert_eq!((xk - delta).rem_euclid(pv), 0);
        assert_eq!(delta.rem_euclid(i128::from(t)), 0);
        for (i, m) in moduli.iter().enumerate() {
            let lhs = m.mul(out.limb(i)[k], m.reduce(p.value()));
            assert_eq!(lhs, m.reduce_i128(xk - delta), "coefficient {k}, prime {i}");
        }
    }
}

fn params_5() -> Arc<BfvParameters> {
    BfvParameters::builder()
        .degree(4096)
        .q_bits(&[60, 55, 55, 55, 55])
        .special_bits(61)
        .plain_bits(20)
        .allow_insecure(true)
        .build()
        .unwrap()
}

/// fresh → dot → square → mod switch → dot (size 3) → relinearise → mod switch → square → dot,
/// with budgets that fall at each product and recover at each switch only as far as they
/// should.
#[test]
fn bgv_chain_of_every_operation() {
    let mut s = setup(params_5(), 6);
    let k = 6;
    let xs: Vec<Vec<i64>> = (0..k).map(|_| s.random(20)).collect();
    let cts: Vec<Ciphertext> = xs.iter().map(|v| s.encrypt(v)).collect();
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    let w1 = [3i64, -2, 0, 5, -7, 1];
    let w2 = [-4i64, 9, -1];
    let w3 = [2i64, -3];
    let value = |j: usize| -> i128 {
        let d1 = |o: usize| -> i128 {
            (0..k)
                .map(|i| i128::from(xs[i][j]) * i128::from(w1[(i + o) % k]))
                .sum()
        };
        let sq: Vec<i128> = (0..3).map(|o| d1(o).pow(2)).collect();
        let d2: i128 = (0..3).map(|o| sq[o] * i128::from(w2[o])).sum();
        let sq2 = d2 * d2;
        i128::from(w3[0]) * sq2 + i128::from(w3[1]) * d2
    };
    let fresh = s.budget(&cts[0]);
    let mut budgets = vec![("fresh", fresh)];
    let rotated = |o: usize| -> Vec<i64> { (0..k).map(|i| w1[(i + o) % k]).collect() };
    let d1: Vec<Ciphertext> = (0..3)
        .map(|o| s.ev.dot(&refs, &rotated(o)).unwrap())
        .collect();
    budgets.push(("dot", s.budget(&d1[0])));
    let sq: Vec<Ciphertext> = d1.iter().map(|c| s.ev.square(c).unwrap()).collect();
    budgets.push(("square", s.budget(&sq[0])));
    let sw: Vec<Ciphertext> = sq
        .iter()
        .map(|c| s.ev.mod_switch_to_next(c).unwrap())
        .collect();
    budgets.push(("switch", s.budget(&sw[0])));
    let sw_refs: Vec<&Ciphertext> = sw.iter().collect();
    let d2 = s.ev.dot(&sw_refs, &w2).unwrap();
    assert_eq!(d2.size(), 3);
    budgets.push(("dot (size 3)", s.budget(&d2)));
    let r2 = s.ev.relinearize(&d2, &s.rk).unwrap();
    budgets.push(("relinearise", s.budget(&r2)));
    let r2 = s.ev.mod_switch_to_next(&r2).unwrap();
    budgets.push(("switch", s.budget(&r2)));
    let sq2 = s.ev.square(&r2).unwrap();
    budgets.push(("square", s.budget(&sq2)));
    // The residual term has scale s, the square s²: align it, as the backend does.
    let aligned = s.ev.rescale_to(&r2, sq2.scale()).unwrap();
    let out = s.ev.dot(&[&sq2, &aligned], &w3).unwrap();
    budgets.push(("dot (aligned)", s.budget(&out)));
    println!("{budgets:?}");
    assert_eq!(out.level(), 3);
    assert_eq!(s.decrypt(&out), s.expect(value));
    assert!(budgets.windows(2).all(|w| w[1].1 <= w[0].1 + 60));
    assert!(budgets[2].1 < budgets[1].1, "a square costs budget");
    assert!(budgets[3].1 <= budgets[2].1, "a switch never adds budget");
    assert!(budgets.iter().all(|&(_, b)| b > 0));
}

/// The scale is the product of q⁻¹ mod t over the switched primes (squared by a square), and
/// every level decrypts to the same values.
#[test]
fn bgv_scale_tracks_every_switch() {
    let mut s = setup(params_5(), 7);
    let a = s.random(1000);
    let ct = s.encrypt(&a);
    let t = *s.params.plain();
    let q = s.params.q_primes();
    let mut cur = s.ev.square(&ct).unwrap();
    let mut scale = 1u64;
    let mut last_budget = s.budget(&cur);
    let expect = s.expect(|i| i128::from(a[i]).pow(2));
    for level in (1..5).rev() {
        cur = s.ev.mod_switch_to_next(&cur).unwrap();
        scale = t.mul(scale, t.inv(q[level]).unwrap());
        assert_eq!(cur.level(), level);
        assert_eq!(cur.scale(), scale);
        assert_eq!(s.decrypt(&cur), expect, "level {level}");
        let b = s.budget(&cur);
        println!("level {level}: scale {scale}, budget {b}");
        assert!(b <= last_budget && b > 0);
        last_budget = b;
    }
    let direct =
        s.ev.mod_switch_to_level(&s.ev.square(&ct).unwrap(), 1)
            .unwrap();
    assert_eq!(direct.scale(), scale);
    assert_eq!(s.decrypt(&direct), expect);
    // A square of a switched ciphertext squares the scale; constants follow the scale.
    let low = s.ev.mod_switch_to_level(&ct, 3).unwrap();
    let low_sq = s.ev.square(&low).unwrap();
    assert_eq!(low_sq.scale(), t.mul(low.scale(), low.scale()));
    let shifted = s.ev.add_constant(&low_sq, -17).unwrap();
    assert_eq!(
        s.decrypt(&shifted),
        s.expect(|i| i128::from(a[i]).pow(2) - 17)
    );
    assert!(matches!(
        s.ev.mod_switch_to_level(&low, 4),
        Err(EvalError::CannotSwitch { .. })
    ));
}

/// The real 128-bit set: n = 8192, 163-bit Q, 20-bit t.
#[test]
fn bgv_secure_n8192_square_relin_dot_switch() {
    let params = secure_8192();
    assert!(params.meets_security());
    let mut s: Setup = setup(params, 8);
    let xs: Vec<Vec<i64>> = (0..4).map(|_| s.random(300)).collect();
    let cts: Vec<Ciphertext> = xs.iter().map(|v| s.encrypt_pk(v)).collect();
    let fresh = s.budget(&cts[0]);
    let sq: Vec<Ciphertext> = cts.iter().map(|c| s.ev.square(c).unwrap()).collect();
    let w = [5i64, -3, 2, -1];
    let refs: Vec<&Ciphertext> = sq.iter().collect();
    let d = s.ev.dot(&refs, &w).unwrap();
    let r = s.ev.relinearize(&d, &s.rk).unwrap();
    let expect = s.expect(|j| {
        (0..4)
            .map(|i| i128::from(xs[i][j]).pow(2) * i128::from(w[i]))
            .sum()
    });
    assert_eq!(s.decrypt(&r), expect);
    let low = s.ev.mod_switch_to_level(&r, 1).unwrap();
    println!(
        "n=8192: fresh {fresh}, square {}, dot+relin {}, level 1 {}",
        s.budget(&sq[0]),
        s.budget(&r),
        s.budget(&low)
    );
    assert_eq!(s.decrypt(&low), expect);
    assert!(s.budget(&low) > 0);
}

/// The CryptoNets plan's shape at its own parameters (n = 16384, five 61-bit q primes, 61-bit
/// special prime, two 55-bit plaintext primes under one key set): budgets of BGV and BFV side
/// by side along conv → switch → square → switch → relin → dense → square → dense → switch.
/// Slow (n = 16384); run with `--ignored --nocapture` to see the figures.
#[test]
#[ignore = "n = 16384: run by hand for the noise figures in docs/bgv.md"]
fn bgv_and_bfv_budgets_at_the_shipped_parameters() {
    let q = vec![
        2305843009211596801,
        2305843009211400193,
        2305843009210580993,
        2305843009210515457,
        2305843009210023937,
    ];
    let plain = [36028797017456641u64, 36028797016178689];
    let params = BfvParameters::builder()
        .degree(16384)
        .q_primes(q)
        .special_prime(2305843009211662337)
        .plain_modulus(plain[0])
        .build()
        .unwrap();
    let mut s = setup_for(params.clone(), &plain, 10);
    let bfv_rk = crate::bfv::RelinKey::new(&s.sk, &mut s.rng);
    let bfv_ev = crate::bfv::Evaluator::new(&params);
    let xs: Vec<Vec<i64>> = (0..25).map(|_| s.random(255)).collect();
    let w: Vec<i64> = (0..25).map(|i| (i * 37 % 129) - 64).collect();
    let cts: Vec<Ciphertext> = xs.iter().map(|v| s.encrypt(v)).collect();
    let pk_fresh = s.encrypt_pk(&xs[0]);
    let wd: Vec<i64> = (0..100).map(|i| (i * 53 % 257) - 128).collect();
    let w10 = [3, -5, 7, -11, 13, -17, 19, -23, 29, -31];
    let rk_one = RelinKey::new(&s.sk, &plain[..1], &mut s.rng).unwrap();
    let mut last = 0;
    for (name, rk) in [
        ("key for both primes", &s.rk),
        ("key for t_0 only", &rk_one),
    ] {
        let refs: Vec<&Ciphertext> = cts.iter().collect();
        let mut b = vec![
            ("fresh seeded", s.budget(&cts[0])),
            ("fresh pk", s.budget(&pk_fresh)),
        ];
        let conv = s.ev.dot(&refs, &w).unwrap();
        b.push(("conv", s.budget(&conv)));
        let conv = s.ev.mod_switch_to_level(&conv, 4).unwrap();
        b.push(("switch 4", s.budget(&conv)));
        let sq = s.ev.square(&conv).unwrap();
        b.push(("square", s.budget(&sq)));
        let sq = s.ev.mod_switch_to_level(&sq, 3).unwrap();
        b.push(("switch 3", s.budget(&sq)));
        let dense: Vec<&Ciphertext> = (0..100).map(|_| &sq).collect();
        let fc1 = s.ev.dot(&dense, &wd).unwrap();
        b.push(("dense", s.budget(&fc1)));
        let fc1 = s.ev.relinearize(&fc1, rk).unwrap();
        b.push(("relin", s.budget(&fc1)));
        let sq2 = s.ev.square(&fc1).unwrap();
        b.push(("square", s.budget(&sq2)));
        let fc2 =
            s.ev.relinearize(&s.ev.dot(&[&sq2; 10], &w10).unwrap(), rk)
                .unwrap();
        b.push(("dense+relin", s.budget(&fc2)));
        let out = s.ev.mod_switch_to_level(&fc2, 2).unwrap();
        b.push(("switch 2", s.budget(&out)));
        println!("BGV, {name}: {b:?}");
        last = s.budget(&out);
    }
    // BFV along the same path.
    let cts: Vec<crate::bfv::Ciphertext> = xs
        .iter()
        .map(|v| s.sk.encrypt(&s.enc.encode(v).unwrap(), &mut s.rng).unwrap())
        .collect();
    let refs: Vec<&crate::bfv::Ciphertext> = cts.iter().collect();
    let nb = |c: &crate::bfv::Ciphertext| s.sk.noise_budget(c).unwrap();
    let mut f = vec![("fresh seeded", nb(&cts[0]))];
    let conv = bfv_ev
        .mod_switch_to_level(&bfv_ev.dot(&refs, &w).unwrap(), 4)
        .unwrap();
    f.push(("conv+switch 4", nb(&conv)));
    let sq = bfv_ev
        .mod_switch_to_level(&bfv_ev.square(&conv).unwrap(), 3)
        .unwrap();
    f.push(("square+switch 3", nb(&sq)));
    let dense: Vec<&crate::bfv::Ciphertext> = (0..100).map(|_| &sq).collect();
    let fc1 = bfv_ev
        .relinearize(&bfv_ev.dot(&dense, &wd).unwrap(), &bfv_rk)
        .unwrap();
    f.push(("dense+relin", nb(&fc1)));
    let sq2 = bfv_ev.square(&fc1).unwrap();
    f.push(("square", nb(&sq2)));
    println!("BFV: {f:?}");
    assert!(last > 0, "the per-prime key leaves budget at the output");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4))]
    /// Random values, weights and constants: every operation, including a product of two
    /// switched ciphertexts with different scales, decrypts to plain arithmetic mod t.
    #[test]
    fn bgv_operations_match_plain_arithmetic_for_random_inputs(
        seed in proptest::prelude::any::<u64>(),
        w in proptest::prelude::any::<i64>(),
        c in proptest::prelude::any::<i128>(),
        small in -2000i64..2000,
    ) {
        let mut s = setup(toy(1024), seed);
        let a = s.random(i64::MAX / 4);
        let b = s.random(40_000);
        let ca = s.encrypt(&a);
        let cb = s.encrypt_pk(&b);
        let ev = s.ev.clone();
        let (x, y) = (|i: usize| i128::from(a[i]), |i: usize| i128::from(b[i]));
        let (wi, ci, si) = (i128::from(w), c % (1i128 << 100), i128::from(small));
        let low_a = ev.mod_switch_to_next(&ca).unwrap();
        let low_b2 = ev.mod_switch_to_next(&ev.square(&cb).unwrap()).unwrap();
        let cases: Vec<(&str, Ciphertext, Vec<i64>)> = vec![
            ("mul_scalar", ev.mul_scalar(&ca, w).unwrap(), s.expect(|i| x(i) * wi)),
            (
                "dot",
                ev.dot(&[&ca, &cb, &ca], &[small, -3, w]).unwrap(),
                s.expect(|i| x(i) * si - 3 * y(i) + x(i) * wi),
            ),
            (
                "add_constant",
                ev.add_constant(&ca, c % (1i128 << 100)).unwrap(),
                s.expect(|i| x(i) + ci),
            ),
            (
                "mixed-scale product",
                ev.mul(&low_a, &ev.relinearize(&low_b2, &s.rk).unwrap()).unwrap(),
                s.expect(|i| x(i) * y(i) * y(i)),
            ),
            (
                "mixed-scale dot",
                ev.dot_any_scale(&[&low_a, &low_b2], &[small, w]).unwrap(),
                s.expect(|i| x(i) * si + y(i) * y(i) * wi),
            ),
        ];
        for (name, ct, expect) in cases {
            proptest::prop_assert_eq!(s.decrypt(&ct), expect, "{}", name);
        }
    }
}
