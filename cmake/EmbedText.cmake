# Run as `cmake -DIN=file -DOUT=file.cc -DSYMBOL=ns::function -P EmbedText.cmake`: writes a C++ file
# whose function returns the input file's text (e.g. the OpenAPI document) as a static string.
file(READ ${IN} text)
string(REGEX REPLACE "::[^:]*$" "" ns ${SYMBOL})
string(REGEX REPLACE "^.*::" "" fn ${SYMBOL})
file(WRITE ${OUT}.tmp "// Generated from ${IN} by cmake/EmbedText.cmake. Do not edit.\n#include <string>\n\nnamespace ${ns} {\n\nconst std::string& ${fn}() {\n  static const std::string text = R\"inkwire_text(${text})inkwire_text\";\n  return text;\n}\n\n}  // namespace ${ns}\n")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
