/*
 * type_input.h
 *		Errors of our types' input functions: soft where the server has them.
 *
 * From PostgreSQL 16 an input function may be handed an error context
 * (fcinfo->context); errsave() then records the error and returns, the
 * input function returns too, and pg_input_is_valid() or COPY ... ON_ERROR
 * see a refused value instead of an aborted statement.  Without such a
 * context, and on older servers, the error is raised as usual.  Callers
 * return right after TypeInputError(): on 16+ it may come back.
 */
#ifndef LOYALTY_TYPE_INPUT_H
#define LOYALTY_TYPE_INPUT_H

#include "nodes/nodes.h"
#include "utils/elog.h"

#if PG_VERSION_NUM >= 160000
#define TypeInputError(escontext, ...)	errsave(escontext, __VA_ARGS__)
#else
#define TypeInputError(escontext, ...) \
	do { \
		(void) (escontext); \
		ereport(ERROR, __VA_ARGS__); \
	} while (0)
#endif

#endif							/* LOYALTY_TYPE_INPUT_H */
