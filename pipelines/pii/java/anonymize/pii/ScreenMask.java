package anonymize.pii;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import org.apache.spark.sql.api.java.UDF1;
import org.apache.spark.sql.expressions.UserDefinedFunction;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataTypes;

/**
 * Which PII entities' screens a text value passes, as a bit mask (0 for null).
 *
 * <p>The native half of {@code pipelines.pii.spark}: each screen is a catalogue entity's
 * regex-free guards, then its Java regex, all configured from Python with {@link #add}
 * (this file holds no PII knowledge, only the facts the guards compare). Written in Java
 * rather than Spark SQL because the gate screens every value of every string column for
 * two dozen entities: as SQL expressions every regex decodes the value to a String and
 * builds a Matcher, and every guard is an expression of its own. Here a value is decoded
 * once, its facts come from one loop over its characters ({@link #facts}), and only the
 * screens whose guards pass run their regex.
 *
 * <p>Each screen must stay a superset of the Python engine's confirmation; {@code
 * tests/spark/test_pii.py} checks it with generated values, through this class.
 */
public final class ScreenMask implements UDF1<String, Long> {
  private static final long serialVersionUID = 1L;

  /** The guard facts, by name: {@link #facts} computes them, {@link #add} compares them. */
  static final List<String> FACTS = List.of("length", "digits", "run", "started_run",
      "space_capital", "letters_digits", "word_run", "hex_separator", "digit_x");

  /** One screen: minimums of the facts, substrings, then a regex (or none). */
  private static final class Screen implements java.io.Serializable {
    private static final long serialVersionUID = 1L;
    final long bit;
    final int[] minimum = new int[FACTS.size()];
    final String[] containsAll;
    final boolean anyTest; // whether containsAny had substrings
    final String[][] anyByFirst = new String[128][]; // those starting with an ASCII char
    final String[] anyOther; // the others
    final Pattern regex;

    Screen(int bit, String guards, String containsAll, String containsAny, String regex) {
      this.bit = 1L << bit;
      java.util.Set<String> seen = new java.util.HashSet<>();
      for (String guard : split(guards, ",")) {
        String[] kv = guard.split("=", 2);
        int i = FACTS.indexOf(kv[0]);
        if (i < 0 || kv.length != 2 || !kv[1].matches("[0-9]{1,9}") || !seen.add(kv[0])) {
          throw new IllegalArgumentException("bad guard (name=count, each once): " + guard);
        }
        minimum[i] = Integer.parseInt(kv[1]);
      }
      this.containsAll = split(containsAll, "\n");
      String[] any = split(containsAny, "\n");
      for (String p : concat(this.containsAll, any)) {
        if (p.isEmpty()) {
          throw new IllegalArgumentException("empty substring in a guard");
        }
      }
      this.anyTest = any.length > 0;
      List<String> other = new ArrayList<>();
      for (String p : any) {
        char first = p.charAt(0);
        if (first < 128) {
          String[] old = anyByFirst[first] == null ? new String[0] : anyByFirst[first];
          anyByFirst[first] = java.util.Arrays.copyOf(old, old.length + 1);
          anyByFirst[first][old.length] = p;
        } else {
          other.add(p);
        }
      }
      this.anyOther = other.toArray(new String[0]);
      this.regex = regex.isEmpty() ? null : Pattern.compile(regex);
    }

    boolean passes(String s, int[] facts) {
      for (int i = 0; i < facts.length; i++) {
        if (facts[i] < minimum[i]) {
          return false;
        }
      }
      for (String p : containsAll) {
        if (!s.contains(p)) {
          return false;
        }
      }
      return (!anyTest || containsAny(s)) && (regex == null || regex.matcher(s).find());
    }

    /** Whether one of the containsAny substrings occurs: one pass, by first character. */
    private boolean containsAny(String s) {
      for (int i = 0, n = s.length(); i < n; i++) {
        char c = s.charAt(i);
        String[] starting = c < 128 ? anyByFirst[c] : null;
        if (starting != null) {
          for (String p : starting) {
            if (s.startsWith(p, i)) {
              return true;
            }
          }
        }
      }
      for (String p : anyOther) {
        if (s.contains(p)) {
          return true;
        }
      }
      return false;
    }
  }

  private final List<Screen> screens = new ArrayList<>();

  /**
   * Add a screen (called from Python, {@code pipelines.pii.spark}); an entity with two
   * forms adds two screens with the same bit.
   *
   * @param bit the entity's bit in the mask (0-62)
   * @param guards fact minimums, {@code name=value} separated by commas (see {@link #FACTS};
   *     a boolean fact is 0 or 1), "" for none
   * @param containsAll substrings the value must all hold, newline-separated ("" for none)
   * @param containsAny substrings the value must hold one of, newline-separated ("" for none)
   * @param regex Java regex the value must match somewhere (RLIKE's semantics), "" for none
   * @return this object
   */
  public ScreenMask add(int bit, String guards, String containsAll, String containsAny,
      String regex) {
    if (bit < 0 || bit > 62) {
      throw new IllegalArgumentException("bit out of range: " + bit);
    }
    screens.add(new Screen(bit, guards, containsAll, containsAny, regex));
    return this;
  }

  /**
   * This UDF as a Spark function returning bigint, declared never null (0 for a null
   * value): an aggregate over it then evaluates it once per row, not again for a null
   * test. Built here, where Java picks the typed {@code udf(UDF1, DataType)} overload
   * (through py4j the untyped Scala one may be chosen, which Spark refuses).
   *
   * @return the function, ready to register
   */
  public UserDefinedFunction function() {
    return functions.udf(this, DataTypes.LongType).asNonNullable();
  }

  @Override
  public Long call(String s) {
    if (s == null) {
      return 0L;
    }
    int[] facts = facts(s);
    long mask = 0L;
    for (Screen screen : screens) {
      if ((mask & screen.bit) == 0 && screen.passes(s, facts)) {
        mask |= screen.bit;
      }
    }
    return mask;
  }

  /**
   * The facts of one value, in {@link #FACTS} order, from one pass over its UTF-16 code units
   * (a digit also looks back at most four units).
   *
   * <ul>
   *   <li>length: code units (at least the code points Spark's and Python's lengths count);
   *   <li>digits: ASCII digits;
   *   <li>run: the most digits in one run, a run being digits with at most two of {@code [
   *       -./()]} between neighbours (three or more end it);
   *   <li>started_run: the same, counted from a digit where the engine's digit runs may
   *       start: at the start, after a character outside {@code [A-Za-z0-9_+]}, or after a
   *       {@code +} that is itself so placed;
   *   <li>space_capital: 1 if white space (Python's {@code \s}) is directly followed by an
   *       ASCII capital or a non-ASCII character;
   *   <li>letters_digits: 1 if two ASCII letters, not after an ASCII letter, digit or {@code
   *       _}, are directly followed by two ASCII digits;
   *   <li>word_run: the longest run of ASCII letters and digits not after an {@code _};
   *   <li>hex_separator: 1 if two hex digits are directly followed by {@code :} or {@code
   *       -}, or four by {@code .};
   *   <li>digit_x: 1 if a digit is directly followed by {@code x} or {@code e}.
   * </ul>
   *
   * <p>Characters are classified by table lookup (ASCII) so that the loop is mostly
   * arithmetic: it runs for every value of every string column.
   *
   * @param s the value
   * @return the facts
   */
  static int[] facts(String s) {
    int digits = 0;
    int run = 0;
    int startedRun = 0;
    int spaceCapital = 0;
    int lettersDigits = 0;
    int wordRun = 0;
    int hexSeparator = 0;
    int digitX = 0;
    boolean inRun = false; // a digit run is open (maybe followed by separators)
    int runDigits = 0; // digits in the open run
    int startedDigits = -1; // digits since its first possible start (-1: none yet)
    int separators = 0; // separators since the open run's last digit
    int alnum = 0; // length of the current run of ASCII letters and digits
    boolean afterUnderscore = false; // that run follows an underscore
    int hex = 0; // length of the current run of hex digits
    int before = 0; // classes of the previous character (none at the start)
    final int n = s.length();
    for (int i = 0; i < n; i++) {
      char c = s.charAt(i);
      int k = c < 128 ? CLASSES[c] : (c == 0x85 || Character.isSpaceChar(c) ? CAP | SPACE : CAP);
      if ((k & DIGIT) != 0) {
        digits++;
        if (!inRun || separators >= 3) {
          runDigits = 0;
          startedDigits = -1;
        }
        inRun = true;
        separators = 0;
        runDigits++;
        if (startedDigits >= 0) {
          startedDigits++;
        } else if ((before & WORD_OR_PLUS) == 0 || ((before & PLUS) != 0
            && (i == 1 || (classOf(s.charAt(i - 2)) & WORD_OR_PLUS) == 0))) {
          startedDigits = 1;
        }
        run = Math.max(run, runDigits);
        startedRun = Math.max(startedRun, startedDigits);
        if ((before & DIGIT) != 0 && i >= 3 && (classOf(s.charAt(i - 2)) & LETTER) != 0
            && (classOf(s.charAt(i - 3)) & LETTER) != 0
            && (i == 3 || (classOf(s.charAt(i - 4)) & (DIGIT | LETTER | UNDERSCORE)) == 0)) {
          lettersDigits = 1;
        }
      } else if ((k & SEPARATOR) != 0) {
        separators++;
      } else {
        inRun = false;
      }
      if ((k & (LETTER | DIGIT)) != 0) {
        if (alnum++ == 0) {
          afterUnderscore = (before & UNDERSCORE) != 0;
        }
        if (!afterUnderscore) {
          wordRun = Math.max(wordRun, alnum);
        }
      } else {
        alnum = 0;
      }
      if (((c == ':' || c == '-') && hex >= 2) || (c == '.' && hex >= 4)) {
        hexSeparator = 1;
      }
      hex = (k & HEX) != 0 ? hex + 1 : 0;
      if ((c == 'x' || c == 'e') && (before & DIGIT) != 0) {
        digitX = 1;
      }
      if ((k & CAP) != 0 && (before & SPACE) != 0) {
        spaceCapital = 1;
      }
      before = k;
    }
    return new int[] {n, digits, run, startedRun, spaceCapital, lettersDigits, wordRun,
        hexSeparator, digitX};
  }

  // Character classes (bits), and their table for ASCII.
  private static final int DIGIT = 1;
  private static final int LETTER = 2;
  private static final int HEX = 4;
  private static final int SEPARATOR = 8; // between a digit run's digits: [ -./()]
  private static final int SPACE = 16; // Python's \s (non-ASCII: Character.isSpaceChar, U+0085)
  private static final int CAP = 32; // an ASCII capital, or any non-ASCII character
  private static final int PLUS = 64;
  private static final int UNDERSCORE = 128;
  private static final int WORD_OR_PLUS = DIGIT | LETTER | UNDERSCORE | PLUS;
  private static final int[] CLASSES = new int[128];

  static {
    for (char c = '0'; c <= '9'; c++) {
      CLASSES[c] |= DIGIT | HEX;
    }
    for (char c = 'a'; c <= 'z'; c++) {
      CLASSES[c] |= LETTER | (c <= 'f' ? HEX : 0);
      CLASSES[Character.toUpperCase(c)] |= LETTER | CAP | (c <= 'f' ? HEX : 0);
    }
    for (char c : " -./()".toCharArray()) {
      CLASSES[c] |= SEPARATOR;
    }
    for (char c : " \t\n\u000b\f\r\u001c\u001d\u001e\u001f".toCharArray()) {
      CLASSES[c] |= SPACE;
    }
    CLASSES['+'] |= PLUS;
    CLASSES['_'] |= UNDERSCORE;
  }

  private static int classOf(char c) {
    return c < 128 ? CLASSES[c] : CAP;
  }

  private static String[] concat(String[] a, String[] b) {
    String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  private static String[] split(String joined, String separator) {
    return joined.isEmpty() ? new String[0] : joined.split(separator, -1);
  }
}
