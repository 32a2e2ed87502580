/*
 * member_alias.h
 *		Merged and forgotten members as the accrual trigger sees them.
 */
#ifndef LOYALTY_MEMBER_ALIAS_H
#define LOYALTY_MEMBER_ALIAS_H

extern char *MemberAliasResolve(const char *program, char *member_id);
extern void MemberAliasBarrier(void);
extern bool MemberAliasesExist(void);

#endif							/* LOYALTY_MEMBER_ALIAS_H */
