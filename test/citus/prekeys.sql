-- TEMPORARY (until branch keys lands): the key changes of PLAN13.
ALTER TABLE loyalty.ledger DROP CONSTRAINT ledger_pkey, ADD PRIMARY KEY (id, member_id);
DROP INDEX loyalty.ledger_ref_key; CREATE UNIQUE INDEX ledger_ref_key ON loyalty.ledger (program, member_id, ref) WHERE ref IS NOT NULL;
DROP INDEX loyalty.ledger_unredeem_key; CREATE UNIQUE INDEX ledger_unredeem_key ON loyalty.ledger (related_id, member_id) WHERE kind='unredeem';
ALTER TABLE loyalty.lot DROP CONSTRAINT lot_pkey, ADD PRIMARY KEY (id, member_id);
ALTER TABLE loyalty.held_lot DROP CONSTRAINT held_lot_pkey, ADD PRIMARY KEY (lot_id, member_id);
ALTER TABLE loyalty.member_hold DROP CONSTRAINT member_hold_pkey, ADD PRIMARY KEY (id, member_id);
ALTER TABLE loyalty.fraud_flag DROP CONSTRAINT fraud_flag_pkey, ADD PRIMARY KEY (id, member_id);
ALTER TABLE loyalty.tier_history DROP CONSTRAINT tier_history_pkey, ADD PRIMARY KEY (id, member_id);
ALTER TABLE loyalty.referral_rejection DROP CONSTRAINT referral_rejection_pkey, ADD PRIMARY KEY (id, member_id);
DROP INDEX loyalty.coupon_redemption_ref_key;
ALTER TABLE loyalty.referral_commission DROP CONSTRAINT referral_commission_pkey, ADD PRIMARY KEY (program, member_id, order_id, generation, level);
