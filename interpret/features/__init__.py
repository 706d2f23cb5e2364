"""Per-character signals computed from text alone: the registry, prose, code and user features.

Alignment: feature(text)[t] describes text[t] as the state *after reading* text[t], the same
index as row t of a Recording. Every feature returns a (len(text),) array. Lines end at "\\n",
"\\r\\n" (one break) or a lone "\\r"; terminator characters belong to the line they end. Each
feature's docstring states its exact convention. Importing this package registers every
built-in (prose first, then code) in FEATURES.
"""
from interpret.features.registry import (DOMAINS, FEATURES, TYPES, SPLITS, Feature, evaluate, evaluate_all,
                                         evaluate_documents, get_features, pieces, register)
from interpret.features.prose import (chars_to_line_end, in_parens, in_quote, indent_level, line_length,
                                      position_in_line, word_position)
from interpret.features.code import (code_depth, comment_style, in_comment, in_comment_c, in_comment_hash,
                                     in_if_condition, in_string)
from interpret.features.user import load_feature_file, regex_feature
from interpret.features.choose import choose_features, looks_like_code

__all__ = ["DOMAINS", "FEATURES", "TYPES", "SPLITS", "Feature", "evaluate", "evaluate_all",
           "evaluate_documents", "get_features", "pieces", "register", "chars_to_line_end", "in_parens",
           "in_quote", "indent_level", "line_length", "position_in_line", "word_position", "code_depth",
           "comment_style", "in_comment", "in_comment_c", "in_comment_hash", "in_if_condition", "in_string",
           "load_feature_file", "regex_feature", "choose_features", "looks_like_code"]
