# Reference values for the canary judge's tests (analysis/tests/reference_r.rs).
# Run: Rscript scripts/judge-reference.R
# Needs only base R (Debian: r-base-core). Prints, per case, R's wilcox.test defaults and the
# exact order statistics of the pairwise differences by brute force (sort(outer(x, y, "-"))).

minstd <- function(seed, count) {
  # Park-Miller "minimal standard" generator; exact in doubles, reproduced bit for bit in Rust.
  s <- seed
  out <- numeric(count)
  for (i in seq_len(count)) {
    s <- (s * 48271) %% 2147483647
    out[i] <- s / 2147483647
  }
  out
}

latency <- function(seed, n, shift) {
  u <- minstd(seed, 2 * n)
  a <- u[seq(1, 2 * n, by = 2)]
  b <- u[seq(2, 2 * n, by = 2)]
  80 + 30 * a + 2 / (1.0005 - b) + shift
}

order_stats <- function(x, y, conf) {
  x <- x[is.finite(x)]; y <- y[is.finite(y)]
  n <- length(x); m <- length(y); N <- n + m; nm <- n * m
  tx <- table(x); ty <- table(y)
  ties <- sum(tx^3 - tx) + sum(ty^3 - ty)
  s0 <- sqrt((nm / 12) * ((N + 1) - ties / (N * (N - 1))))
  z <- qnorm((1 - conf) / 2, lower.tail = FALSE)
  klo <- max(1, nm - floor(nm / 2 + 0.5 + z * s0))
  khi <- min(nm, nm - floor(nm / 2 - 0.5 - z * s0))
  d <- sort(outer(x, y, "-"))
  c(klo, khi, d[klo], d[khi], median(d))
}

report <- function(name, x, y, conf = 0.98, brute = TRUE) {
  w <- suppressWarnings(wilcox.test(x, y))
  ci <- suppressWarnings(wilcox.test(x, y, conf.int = TRUE, conf.level = conf,
                                     exact = FALSE, correct = TRUE))
  cat(sprintf("%s: W=%.17g p=%.17g method=%s\n", name, w$statistic, w$p.value, w$method))
  cat(sprintf("%s: normal_cc conf=%.2f ci=[%.17g, %.17g] est=%.17g\n",
              name, conf, ci$conf.int[1], ci$conf.int[2], ci$estimate))
  if (brute) {
    o <- order_stats(x, y, conf)
    cat(sprintf("%s: k_low=%d k_high=%d lower=%.17g upper=%.17g hl=%.17g\n",
                name, o[1], o[2], o[3], o[4], o[5]))
  }
}

report("small_no_ties", c(12.1, 14.3, 11.8, 15.2, 13.9, 16.4, 12.7),
       c(10.2, 11.5, 12.4, 9.8, 11.1, 10.9))
report("small_ties", c(3, 5, 5, 6, 7, 7, 8, 9), c(1, 2, 3, 3, 4, 5, 5, 6, 6))
report("identical", c(4, 8, 15, 16, 23, 42), c(42, 23, 16, 15, 8, 4))
report("nan_removed", c(1.2, NaN, 2.4, 3.1, NaN, 2.2, 2.9), c(0.9, 1.1, NaN, 1.5, 1.0))
report("tiny_exact", c(1.5, 3.5, 9.25), c(0.5, 2.5, 4.75, 6.0))
report("latency_60", latency(7, 60, 0.8), latency(11, 60, 0))
report("latency_2000", latency(1234, 2000, 1.5), latency(4321, 2000, 0))
report("latency_2000_cl95", latency(1234, 2000, 1.5), latency(4321, 2000, 0), conf = 0.95)
report("latency_20000", latency(99, 20000, 0.25), latency(98, 20000, 0), brute = FALSE)
# Zero-inflated per-minute error counts over 120 minutes: baseline 20 errors, canary 48 (2.4x).
zc <- c(rep(0, 100), rep(1, 20))
zx <- c(rep(0, 80), rep(1, 32), rep(2, 8))
report("zero_inflated", zx, zc)
r <- poisson.test(c(sum(zx), sum(zc)), c(120000, 120000), conf.level = 0.98)
cat(sprintf("zero_inflated_rate: p=%.17g est=%.17g ci=[%.17g, %.17g]\n",
            r$p.value, r$estimate, r$conf.int[1], r$conf.int[2]))
r <- poisson.test(c(7, 2), c(5000, 4000), conf.level = 0.98)
cat(sprintf("rate_small: p=%.17g est=%.17g ci=[%.17g, %.17g]\n",
            r$p.value, r$estimate, r$conf.int[1], r$conf.int[2]))
r <- poisson.test(c(130, 190), c(1e6, 1.1e6), conf.level = 0.95)
cat(sprintf("rate_lower: p=%.17g est=%.17g ci=[%.17g, %.17g]\n",
            r$p.value, r$estimate, r$conf.int[1], r$conf.int[2]))
r <- poisson.test(c(0, 3), c(100, 100), conf.level = 0.98)
cat(sprintf("rate_zero_canary: p=%.17g est=%.17g ci=[%.17g, %.17g]\n",
            r$p.value, r$estimate, r$conf.int[1], r$conf.int[2]))
