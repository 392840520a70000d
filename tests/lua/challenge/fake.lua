-- The fake probe now ships with mpic (mpic.fake_probe, T.fake_probe).
return require "mpic.fake_probe"
