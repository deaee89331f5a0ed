-- mmoe-fig5.sql -- MMoE Fig 5 (trainability): histograms of the final loss
-- over repeated runs, one panel per correlation and model.
--
-- Experiment :experiment (default mmoe-fig5), metric :metric (default
-- test/loss/t1) at each finished trial's final step (v_final).  The bins
-- split the range [lo, hi] of ONE correlation (all its models) into :bins
-- bins, so the panels of a row share their x range and can be compared;
-- the last bin includes hi.  The bins are equal in log(loss) when every
-- value of the correlation is positive (losses are; the few runs stuck in
-- a poor minimum would otherwise squeeze all the others into one or two
-- linear bins), else equal in the value itself.  Failed (diverged) trials
-- have no final loss and are not counted (the mmoe-table table counts
-- them).
--
-- One row per (correlation, model, lr, bin), empty bins included: the bin's
-- edges lo and hi, the runs in it (count) and the runs of the panel (n).
--
--   sqlite3 results.db -cmd ".param set :experiment 'mmoe-fig5'" \
--       -cmd ".param set :metric 'test/loss/t1'" -cmd ".param set :bins 20" \
--       < sql/figures/mmoe-fig5.sql
WITH RECURSIVE final AS (
    SELECT correlation, model, lr, value
      FROM v_final
     WHERE experiment = :experiment AND name = :metric AND value IS NOT NULL
), span AS (
    -- a correlation's range on the binning scale u (ln(value) or value); a
    -- degenerate one (all runs equal) gets a small width
    SELECT correlation, logs,
           u_lo, CASE WHEN u_hi > u_lo THEN u_hi ELSE u_lo + max(abs(u_lo) * 1e-3, 1e-9) END AS u_hi
      FROM (SELECT correlation, min(value) > 0 AS logs,
                   CASE WHEN min(value) > 0 THEN ln(min(value)) ELSE min(value) END AS u_lo,
                   CASE WHEN min(value) > 0 THEN ln(max(value)) ELSE max(value) END AS u_hi
              FROM final
             GROUP BY correlation)
), bin(b) AS (
    SELECT 0 UNION ALL SELECT b + 1 FROM bin WHERE b + 1 < :bins
), binned AS (
    SELECT f.correlation, f.model, f.lr,
           max(min(CAST(((CASE WHEN s.logs THEN ln(f.value) ELSE f.value END) - s.u_lo)
                        * :bins / (s.u_hi - s.u_lo) AS INTEGER), :bins - 1), 0) AS b
      FROM final f
      JOIN span s ON s.correlation = f.correlation
), counted AS (
    SELECT correlation, model, lr, b, count(*) AS count
      FROM binned
     GROUP BY correlation, model, lr, b
), panel AS (
    SELECT correlation, model, lr, count(*) AS n FROM final GROUP BY correlation, model, lr
)
SELECT p.correlation, p.model, p.lr, bin.b AS bin,
       CASE WHEN s.logs THEN exp(s.u_lo + (s.u_hi - s.u_lo) * bin.b / :bins)
            ELSE s.u_lo + (s.u_hi - s.u_lo) * bin.b / :bins END AS lo,
       CASE WHEN s.logs THEN exp(s.u_lo + (s.u_hi - s.u_lo) * (bin.b + 1) / :bins)
            ELSE s.u_lo + (s.u_hi - s.u_lo) * (bin.b + 1) / :bins END AS hi,
       coalesce(k.count, 0) AS count,
       p.n
  FROM panel p
  JOIN span s ON s.correlation = p.correlation
 CROSS JOIN bin
  LEFT JOIN counted k ON k.correlation = p.correlation AND k.model = p.model
                     AND k.lr IS p.lr AND k.b = bin.b
 ORDER BY p.correlation,
          CASE p.model WHEN 'shared_bottom' THEN 1 WHEN 'omoe' THEN 2 WHEN 'mmoe' THEN 3 ELSE 4 END,
          p.model, p.lr, bin.b;
