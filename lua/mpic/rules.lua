-- mpic.rules: the closed vocabulary of decision rules. Every decide() result
-- carries info.rule, one of the names below, with the data the rule names
-- in the same info table; the audit line (per attempt and for the answer),
-- the response's mpic_decision and the shadow verdicts record it, and
-- `mpic explain` reads it (never the reason's words, which may change).
--
-- Set by mpic.quorum.evaluate (the policy library): quorum-met, waiting,
-- quorum, rir-diversity, primary, perspective-count, requested-quorum,
-- no-perspectives, malformed-state. By a shipped policy: primary-first.
-- By mpic.policy around any policy: policy-error (the policy raised, hit a
-- limit or answered malformed), policy (a verdict without a rule from this
-- list: the policy's own rule; a rule name it gave is kept as
-- info.policy_rule). By the orchestrator: policy-floor (the BR floor
-- refused or delayed a policy's "valid"; info.floor_rule is the floor's own
-- rule) and deadline (the validation deadline passed while undecided, or
-- unfinished perspectives counted as failures decided it; info.cause is the
-- rule that would have named it otherwise). See docs/DESIGN.md.
local M = {}

-- name -> the sentence explain prints, and the info fields that go with it
M.LIST = {
  { "quorum-met", "quorum and RIR diversity met", "quorum (k/n), passed, required, passed_rirs, min_rirs" },
  { "waiting", "not decided yet: more results are needed", "passed, pending, required" },
  { "quorum", "too many remotes failed to corroborate", "failed, total, required, first_failure" },
  { "rir-diversity", "corroborating remotes cannot span enough RIRs", "possible_rirs, min_rirs" },
  { "primary", "the primary perspective failed", "primary_id" },
  { "perspective-count", "fewer remote perspectives than the BR minimum for the date", "total, min_remotes, date" },
  { "requested-quorum", "the requested quorum_count is not allowed", "total, requested" },
  { "no-perspectives", "no remote perspective was selected", "" },
  { "malformed-state", "the policy received a malformed state (fail closed)", "" },
  { "primary-first", "the primary-first rule (remotes only after the primary passed)", "" },
  { "policy-error", "the policy failed (fail closed)", "" },
  { "policy", "the policy's own rule", "policy_rule (the name the policy gave, if any)" },
  { "policy-floor", 'the BR floor under every policy refused the policy\'s "valid"', "floor_rule" },
  { "deadline", "the validation deadline passed before the outcome was certain", "cause" },
}

M.known, M.sentence, M.data = {}, {}, {}
for _, r in ipairs(M.LIST) do
  M.known[r[1]] = true
  M.sentence[r[1]] = r[2]
  M.data[r[1]] = r[3]
end

--- The rule name to record for a policy's info.rule: itself when it is in
--- the vocabulary, else "policy".
function M.normalize(rule)
  if type(rule) == "string" and M.known[rule] then return rule end
  return "policy"
end

--- The sentence for a rule ("unknown" and a note for anything else, such as
--- a line written before rules were recorded).
function M.describe(rule)
  if type(rule) == "string" and M.sentence[rule] then return rule, M.sentence[rule] end
  return "unknown", "no rule recorded"
end

return M
